using System.Diagnostics;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Inference.Tests;

/// <summary>ONNX Runtime 1.32 queues usage-telemetry events under ~/.cache/Microsoft/DeveloperTools/.onnxruntime
/// unless told not to. A child process (this test executable, one test) creates the engine and runs a session with
/// HOME and XDG_CACHE_HOME pointed at an empty temporary folder, which must stay empty.</summary>
public class TelemetryTests
{
    private const string ChildVariable = "MAMBAST_TELEMETRY_CHILD";

    [Fact]
    public async Task A_session_run_queues_no_telemetry_event()
    {
        var home = Directory.CreateTempSubdirectory("mambast-home-").FullName;
        try
        {
            var info = new ProcessStartInfo(Environment.ProcessPath!)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            {
                info.ArgumentList.Add(typeof(TelemetryTests).Assembly.Location);
            }

            foreach (var arg in new[] { "-method", $"{typeof(TelemetryTests).FullName}.{nameof(Child_creates_the_engine_and_runs_a_session)}" })
            {
                info.ArgumentList.Add(arg);
            }

            info.Environment["HOME"] = home;
            info.Environment["XDG_CACHE_HOME"] = Path.Combine(home, ".cache");
            info.Environment.Remove("ORT_DISABLE_TELEMETRY"); // the API switch alone must do it
            info.Environment[ChildVariable] = home;
            using var child = Process.Start(info)!;
            var stdout = child.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            var stderr = await child.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            await child.WaitForExitAsync(TestContext.Current.CancellationToken);

            var output = await stdout + stderr;
            child.ExitCode.ShouldBe(0, output);
            output.ShouldContain("Total: 1, Errors: 0, Failed: 0, Skipped: 0"); // the child really ran the session
            Directory.EnumerateFileSystemEntries(home, "*", SearchOption.AllDirectories).ShouldBeEmpty();
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    /// <summary>Does its work only as the child of <see cref="A_session_run_queues_no_telemetry_event"/>.</summary>
    [Fact]
    public void Child_creates_the_engine_and_runs_a_session()
    {
        var home = Environment.GetEnvironmentVariable(ChildVariable);
        using var engine = MambaStEngine.Create(Golden.Options("sequential"));
        var style = engine.EncodeStyle(Golden.SmoothImage(32, 32, 1));
        engine.Stylize(style, [new ContentItem { Content = Golden.SmoothImage(32, 32, 2), Seed = 1 }], TestContext.Current.CancellationToken).Count.ShouldBe(1);
        if (!string.IsNullOrEmpty(home))
        {
            Environment.GetEnvironmentVariable("HOME").ShouldBe(home);
        }
    }
}
