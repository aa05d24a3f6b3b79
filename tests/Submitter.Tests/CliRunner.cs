using Spectre.Console;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary>Runs <c>mambast</c> in process with captured output.</summary>
internal static class CliRunner
{
    public static async Task<(int Exit, string Out, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 200;
        var exit = await new Cli(output, error, console).InvokeAsync(args, TestContext.Current.CancellationToken);
        return (exit, output.ToString(), error.ToString());
    }
}
