using System.Diagnostics;

using Xunit;

namespace MambaSt.Batch.Testing;

/// <summary>
/// The real RabbitMQ and Azurite every integration test talks to. Uses MAMBAST_RABBITMQ_URL and
/// MAMBAST_BLOB_CONNECTION when set (as `make test` does, once per run); otherwise starts them once per
/// test process through scripts/services.sh (idempotent, shared across processes by a file lock).
/// </summary>
public sealed class LocalServices : IAsyncLifetime
{
    public string RabbitMqUrl { get; private set; } = "";

    public string BlobConnectionString { get; private set; } = "";

    public Uri RabbitMqUri => new(RabbitMqUrl);

    public string ServicesScript => Path.Combine(RepoPaths.Root, "scripts", "services.sh");

    public async ValueTask InitializeAsync()
    {
        var rabbit = Environment.GetEnvironmentVariable("MAMBAST_RABBITMQ_URL");
        var blob = Environment.GetEnvironmentVariable("MAMBAST_BLOB_CONNECTION");
        if (string.IsNullOrEmpty(rabbit) || string.IsNullOrEmpty(blob))
        {
            var output = await RunScriptAsync("up", TimeSpan.FromMinutes(3));
            foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var (name, value) = ParseExport(line);
                if (name == "MAMBAST_RABBITMQ_URL") rabbit ??= value;
                if (name == "MAMBAST_BLOB_CONNECTION") blob ??= value;
            }
        }

        RabbitMqUrl = rabbit ?? throw new InvalidOperationException("RabbitMQ URL unknown after services.sh up");
        BlobConnectionString = blob ?? throw new InvalidOperationException("Blob connection unknown after services.sh up");
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>Runs a services.sh verb (e.g. stop-rabbitmq, start-azurite) and returns its stdout.</summary>
    public async Task<string> RunScriptAsync(string verb, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo("bash", [ServicesScript, verb])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start services.sh");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"services.sh {verb} did not finish within {timeout}");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"services.sh {verb} failed ({process.ExitCode}): {await stderr}");
        }

        return await stdout;
    }

    private static (string Name, string Value) ParseExport(string line)
    {
        // export NAME='value'
        var trimmed = line.Trim();
        if (!trimmed.StartsWith("export ", StringComparison.Ordinal)) return ("", "");
        var eq = trimmed.IndexOf('=');
        if (eq < 0) return ("", "");
        var name = trimmed[7..eq];
        var value = trimmed[(eq + 1)..].Trim('\'');
        return (name, value);
    }
}
