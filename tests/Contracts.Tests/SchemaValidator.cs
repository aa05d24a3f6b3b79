using System.Diagnostics;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Contracts.Tests;

/// <summary>contracts/validate.py (python3-jsonschema, draft 2020-12) over JSON documents.</summary>
public static class SchemaValidator
{
    public static async Task<(int ExitCode, string Output)> ValidateAsync(string messageName, IEnumerable<string> documents, CancellationToken ct)
    {
        var folder = Directory.CreateTempSubdirectory("mambast-validate-");
        try
        {
            var files = new List<string>();
            foreach (var (doc, i) in documents.Select((d, i) => (d, i)))
            {
                var path = Path.Combine(folder.FullName, $"{messageName}-{i:D3}.json");
                await File.WriteAllTextAsync(path, doc, ct);
                files.Add(path);
            }

            var psi = new ProcessStartInfo("/usr/bin/python3", [Path.Combine(RepoPaths.Root, "contracts", "validate.py"), messageName, .. files])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using var process = Process.Start(psi)!;
            var stdout = process.StandardOutput.ReadToEndAsync(ct);
            var stderr = process.StandardError.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct);
            return (process.ExitCode, await stdout + await stderr);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
