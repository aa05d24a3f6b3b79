using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary>submit applies the worker's location allow-list (Storage:AllowedHosts, AllowedAccounts) to what it would
/// enqueue, so the operator learns at submit time (exit 2) instead of from a batch of InvalidRequest failures.
/// Nothing is sent to the refused hosts: the check runs before any I/O.</summary>
public class AllowListSubmitTests
{
    public AllowListSubmitTests(LocalServices services)
    {
        Environment.SetEnvironmentVariable("Storage__ConnectionString", services.BlobConnectionString);
    }

    [Theory]
    [InlineData("https://evil.example.net/outputs/x?sv=2021-08-06&sp=rcw&sig=EVILSIG", "Storage:AllowedHosts")]
    [InlineData("http://10.1.2.3/devstoreaccount1/outputs/x?sv=1&sig=EVILSIG", "https://")]
    [InlineData("https://other.blob.core.windows.net/outputs/x?sv=1&sig=EVILSIG", "Storage:AllowedHosts")]
    public async Task An_output_outside_the_allow_list_is_refused_at_submit_time_with_exit_2(string output, string setting)
    {
        using var dir = TempDir.WithImages(1, size: 8);

        var run = await CliRunner.RunAsync("submit", dir.Path("in"), "--style", dir.Path("style.png"), "--out", output, "--dry-run");

        run.Exit.ShouldBe(ExitCodes.UsageError, run.Error);
        run.Error.ShouldContain("is not allowed");
        run.Error.ShouldContain(setting);
        run.Error.ShouldNotContain("EVILSIG");
    }
}
