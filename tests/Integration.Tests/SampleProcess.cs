using System.Diagnostics;
using System.Text;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Integration.Tests;

/// <summary>A sample subscriber (or the schema validator) run as a child process.</summary>
internal sealed class SampleProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private SampleProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => Append(_stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(_stderr, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static string DotnetSubscriberDll
    {
        get
        {
            var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}") ? "Release" : "Debug";
            var dll = Path.Combine(RepoPaths.Root, "samples", "dotnet-subscriber", "bin", configuration, "net10.0", "MambaSt.Batch.Samples.Subscriber.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException($"sample build output not found: {dll}");
        }
    }

    public static string PythonSubscriber => Path.Combine(RepoPaths.Root, "samples", "python-subscriber", "subscriber.py");

    public string Stdout
    {
        get
        {
            lock (_stdout) return _stdout.ToString();
        }
    }

    public string Output
    {
        get
        {
            lock (_stdout) lock (_stderr) return $"stdout:\n{_stdout}\nstderr:\n{_stderr}";
        }
    }

    public IReadOnlyList<string> Lines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public static SampleProcess Start(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["DOTNET_ENVIRONMENT"] = "Production";
        return new SampleProcess(Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}"));
    }

    public async Task WaitForLineAsync(string prefix, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Lines.Any(l => l.StartsWith(prefix, StringComparison.Ordinal)))
        {
            if (_process.HasExited) throw new InvalidOperationException($"exited ({_process.ExitCode}) before '{prefix}':\n{Output}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"no '{prefix}' within {timeout}:\n{Output}");
            await Task.Delay(100, ct);
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout, Func<string> diagnostics)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"did not exit within {timeout}:\n{Output}\n{diagnostics()}");
        }

        _process.WaitForExit(); // flushes the redirected streams
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private static void Append(StringBuilder sb, string? line)
    {
        if (line is null) return;
        lock (sb) sb.AppendLine(line);
    }
}
