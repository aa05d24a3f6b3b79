using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Contracts.Tests;

/// <summary>`dotnet pack src/Contracts` (as scripts/test.sh runs it) gives a package an integrator can use.</summary>
public class PackageTests
{
    [Fact]
    public async Task The_contracts_package_has_version_readme_licence_docs_and_symbols()
    {
        var ct = TestContext.Current.CancellationToken;
        var output = Directory.CreateTempSubdirectory("mambast-pack-");
        try
        {
            var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}") ? "Release" : "Debug";
            var psi = new ProcessStartInfo("dotnet", ["pack", Path.Combine(RepoPaths.Root, "src", "Contracts"), "-c", configuration, "--no-build", "--nologo", "-o", output.FullName])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
            using var pack = Process.Start(psi)!;
            var log = pack.StandardOutput.ReadToEndAsync(ct);
            var err = pack.StandardError.ReadToEndAsync(ct);
            await pack.WaitForExitAsync(ct);
            pack.ExitCode.ShouldBe(0, await log + await err);

            var nupkg = Directory.GetFiles(output.FullName, "MambaSt.Batch.Contracts.*.nupkg").Where(f => !f.EndsWith(".snupkg", StringComparison.Ordinal)).ShouldHaveSingleItem();
            Directory.GetFiles(output.FullName, "MambaSt.Batch.Contracts.*.snupkg").ShouldHaveSingleItem();

            using var zip = ZipFile.OpenRead(nupkg);
            var entries = zip.Entries.Select(e => e.FullName).ToArray();
            entries.ShouldContain("README.md");
            entries.ShouldContain("lib/net10.0/MambaSt.Batch.Contracts.dll");
            entries.ShouldContain("lib/net10.0/MambaSt.Batch.Contracts.xml");
            await using var nuspecStream = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
            var nuspec = XDocument.Load(nuspecStream);
            string Meta(string name) => nuspec.Descendants().Single(e => e.Name.LocalName == name).Value;
            Meta("id").ShouldBe("MambaSt.Batch.Contracts");
            Meta("version").ShouldMatch(@"^\d+\.\d+\.\d+");
            Meta("license").ShouldBe("MIT");
            Meta("readme").ShouldBe("README.md");
            nuspec.Descendants().Where(e => e.Name.LocalName == "dependency").ShouldBeEmpty("the contracts have no dependencies");

            using var readme = new StreamReader(zip.GetEntry("README.md")!.Open());
            (await readme.ReadToEndAsync(ct)).ShouldContain("Compatibility policy");
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }
}
