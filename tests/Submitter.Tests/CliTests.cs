using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Submitter.Tests;

public class CliTests
{
    [Fact]
    public async Task Help_lists_every_command()
    {
        var (exit, output, _) = await CliRunner.RunAsync("--help");
        exit.ShouldBe(0);
        foreach (var command in new[] { "submit", "watch", "report", "retry-failed", "stylize" }) output.ShouldContain(command);
    }

    [Theory]
    [InlineData("submit", "--max-in-flight")]
    [InlineData("watch", "--batch-id")]
    [InlineData("report", "--format")]
    [InlineData("retry-failed", "--batch-id")]
    [InlineData("stylize", "--style")]
    public async Task Each_command_has_help(string command, string option)
    {
        var (exit, output, _) = await CliRunner.RunAsync(command, "--help");
        exit.ShouldBe(0);
        output.ShouldContain(option);
    }

    [Theory]
    [InlineData("--quality must be between 1 and 100", "submit", "in", "--style", "s.png", "--out", "o", "--quality", "0")]
    [InlineData("--max-side must be between 64 and 8192", "submit", "in", "--style", "s.png", "--out", "o", "--max-side", "10")]
    [InlineData("--strength must be between 0 and 1", "submit", "in", "--style", "s.png", "--out", "o", "--strength", "1.5")]
    [InlineData("gif", "submit", "in", "--style", "s.png", "--out", "o", "--format", "gif")]
    [InlineData("--max-in-flight must be between", "submit", "in", "--style", "s.png", "--out", "o", "--max-in-flight", "0")]
    [InlineData("--style", "submit", "in", "--out", "o")]
    [InlineData("abc", "submit", "in", "--style", "s.png", "--out", "o", "--seed", "abc")]
    [InlineData("--batch-id", "watch")]
    [InlineData("xml", "report", "--batch-id", "b-1", "--format", "xml")]
    [InlineData("frobnicate", "frobnicate")]
    [InlineData("--style", "stylize", "in", "--out", "o")]
    public async Task Bad_arguments_exit_2_with_a_clear_message(string expected, params string[] args)
    {
        var (exit, _, error) = await CliRunner.RunAsync(args);
        exit.ShouldBe(2);
        error.ShouldContain(expected);
        error.ShouldNotContain("   at ");
    }

    /// <summary>
    /// On Ctrl-C or SIGTERM System.CommandLine cancels the command's token and, after ProcessTerminationTimeout, lets
    /// the process exit whether or not the command finished. submit's wind-down (confirms of the sends in flight, bus
    /// stop, the final enqueued-&lt;run&gt;.jsonl write) takes longer than the library's 2 s default, so the
    /// configuration the CLI invokes with must allow more. A child-process SIGINT test would pass with 2 s as well
    /// whenever the wind-down happens to be fast, so the setting itself is what is checked here.
    /// </summary>
    [Fact]
    public void Ctrl_C_gives_the_command_30_seconds_to_record_what_it_sent()
    {
        new System.CommandLine.InvocationConfiguration().ProcessTerminationTimeout.ShouldBe(TimeSpan.FromSeconds(2));

        var settings = new Cli(TextWriter.Null, TextWriter.Null).InvocationSettings();

        settings.ProcessTerminationTimeout.ShouldBe(TimeSpan.FromSeconds(30));
        settings.EnableDefaultExceptionHandler.ShouldBeFalse();
    }

    [Fact]
    public async Task A_missing_source_folder_exits_2()
    {
        using var dir = new TempDir();
        var (exit, _, error) = await CliRunner.RunAsync("submit", dir.Path("nope"), "--style", dir.Path("s.png"), "--out", dir.Path("out"), "--dry-run");
        exit.ShouldBe(2);
        error.ShouldContain("does not exist");
    }

    [Theory]
    [InlineData("a/b")]
    [InlineData("has space")]
    public async Task An_invalid_batch_id_exits_2(string batchId)
    {
        var (exit, _, error) = await CliRunner.RunAsync("report", "--batch-id", batchId, "--output", "/tmp");
        exit.ShouldBe(2);
        error.ShouldContain("batch id");
    }

    [Fact]
    public async Task A_bad_broker_url_exits_2()
    {
        using var dir = TempDir.WithImages(2);
        var (exit, _, error) = await CliRunner.RunAsync("submit", dir.Path("in"), "--style", dir.Path("style.png"), "--out", dir.Path("out"), "--broker", "http://nope");
        exit.ShouldBe(2);
        error.ShouldContain("not an amqp://");
    }

    [Fact]
    public async Task Dry_run_lists_the_jobs_and_writes_nothing()
    {
        using var dir = TempDir.WithImages(3);
        var (exit, output, error) = await CliRunner.RunAsync("submit", dir.Path("in"), "--style", dir.Path("style.png"), "--out", dir.Path("out"), "--dry-run", "--format", "png", "--broker", "amqp://127.0.0.1:1/");
        error.ShouldBeEmpty();
        exit.ShouldBe(0);
        output.ShouldContain("would enqueue 3");
        output.ShouldContain("img1.png");
        Directory.Exists(dir.Path("out")).ShouldBeFalse();
    }

    [Theory]
    [InlineData("submit", "a.png")]
    [InlineData("submit", "a.JPG")]
    [InlineData("stylize", "a.png")]
    public async Task Two_inputs_that_would_share_an_output_exit_2_naming_both_and_the_output(string command, string other)
    {
        using var dir = new TempDir();
        Images.WritePng(dir.Path("in/trip/a.jpg"), 8, 8, 1);
        Images.WritePng(dir.Path($"in/trip/{other}"), 8, 8, 2);
        Images.WritePng(dir.Path("in/trip/b.png"), 8, 8, 3);
        Images.WritePng(dir.Path("style.png"), 8, 8, 999);
        string[] args = command == "submit"
            ? ["submit", dir.Path("in"), "--style", dir.Path("style.png"), "--out", dir.Path("out"), "--dry-run", "--format", "jpeg", "--broker", "amqp://127.0.0.1:1/"]
            : ["stylize", dir.Path("in"), "--style", dir.Path("style.png"), "--out", dir.Path("out"), "--format", "jpeg"];

        var (exit, output, error) = await CliRunner.RunAsync(args);

        exit.ShouldBe(2, error);
        error.ShouldContain("'trip/a.jpg'");
        error.ShouldContain($"'trip/{other}'");
        error.ShouldContain("-> 'trip/a.jpg'");
        error.ShouldNotContain("b.png");
        error.ShouldNotContain("   at ");
        output.ShouldNotContain("would enqueue");
        Directory.Exists(dir.Path("out")).ShouldBeFalse();
    }

    [Fact]
    public async Task An_unreachable_broker_exits_3_without_a_stack_trace()
    {
        using var dir = TempDir.WithImages(2);
        var (exit, _, error) = await CliRunner.RunAsync("submit", dir.Path("in"), "--style", dir.Path("style.png"), "--out", dir.Path("out"), "--broker", "amqp://guest:secret@127.0.0.1:1/");
        exit.ShouldBe(3);
        error.ShouldContain("unreachable");
        error.ShouldNotContain("secret");
        error.ShouldNotContain("   at ");
    }

    [Fact]
    public async Task Report_of_an_unknown_batch_exits_2()
    {
        using var dir = new TempDir();
        var (exit, _, error) = await CliRunner.RunAsync("report", "--batch-id", "b-000", "--output", dir.Root);
        exit.ShouldBe(2);
        error.ShouldContain("not found");
    }
}

internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Root);

    public string Root { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mambast-test-" + Guid.NewGuid().ToString("N")[..10]);

    public string Path(string relative) => System.IO.Path.Combine(Root, relative);

    public static TempDir WithImages(int count, int size = 32)
    {
        var dir = new TempDir();
        for (var i = 0; i < count; i++) Images.WritePng(dir.Path($"in/{(i % 2 == 0 ? "" : "sub/")}img{i}.png"), size, size, i);
        Images.WritePng(dir.Path("style.png"), size, size, 999);
        return dir;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
