using System.Diagnostics;
using System.Text;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Worker.Tests;

/// <summary>The real worker host (src/Worker build output) run as a child process, as in production.</summary>
internal sealed class WorkerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private WorkerProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Log
    {
        get
        {
            lock (_log) return _log.ToString();
        }
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public static string WorkerDll
    {
        get
        {
            var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}") ? "Release" : "Debug";
            var dll = Path.Combine(RepoPaths.Root, "src", "Worker", "bin", configuration, "net10.0", "MambaSt.Batch.Worker.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException($"worker build output not found: {dll}");
        }
    }

    public static WorkerProcess Start(IReadOnlyDictionary<string, string> settings)
    {
        var psi = new ProcessStartInfo("dotnet", [WorkerDll])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(WorkerDll)!,
        };
        psi.Environment["DOTNET_ENVIRONMENT"] = "Production";
        psi.Environment["Logging__LogLevel__Default"] = "Information";
        foreach (var (k, v) in settings) psi.Environment[k] = v;
        return new WorkerProcess(Process.Start(psi) ?? throw new InvalidOperationException("could not start the worker"));
    }

    public async Task WaitForLogAsync(string text, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Log.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited) throw new InvalidOperationException($"worker exited ({_process.ExitCode}) before logging '{text}':\n{Log}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"worker did not log '{text}' within {timeout}:\n{Log}");
            await Task.Delay(100, ct);
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no shutdown, unacknowledged messages go back to the queue.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    /// <summary>SIGTERM: graceful shutdown.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
    }
}
