using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace MambaSt.Batch.Inference;

/// <summary>
/// The process-wide ONNX Runtime environment, created once by the engine before any other ONNX Runtime call:
/// usage telemetry off (<see cref="OrtEnv.DisableTelemetryEvents"/>), and ONNX Runtime's log routed through
/// <see cref="Log"/> so that one call's messages can be captured (the real cause of a failed CUDA provider load is
/// only ever logged, never part of the exception). Messages still go to stderr, as with ONNX Runtime's own logger.
/// </summary>
public static partial class OrtEnvironment
{
    private static readonly Lock Gate = new();
    private static readonly DOrtLoggingFunction Callback = Log; // kept alive for the native side
    private static OrtEnv? _env;
    private static bool _capturesLog;

    [ThreadStatic]
    private static List<string>? _capture;

    /// <summary>The environment; creates it on first use. When something else created ONNX Runtime's environment
    /// first, that one is used (telemetry is still switched off) and <see cref="CapturesLog"/> is false.</summary>
    public static OrtEnv Instance
    {
        get
        {
            lock (Gate)
            {
                if (_env is not null)
                {
                    return _env;
                }

                DisableNativeTelemetry();
                OrtEnv env;
                if (OrtEnv.IsCreated)
                {
                    env = OrtEnv.Instance();
                }
                else
                {
                    var options = new EnvironmentCreationOptions
                    {
                        logId = "mambast",
                        logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING,
                        loggingFunction = Callback,
                    };
                    env = OrtEnv.CreateInstanceWithOptions(ref options);
                    _capturesLog = true;
                }

                env.DisableTelemetryEvents();
                return _env = env;
            }
        }
    }

    /// <summary>On Linux and macOS the 1.32 library queues usage events in ~/.cache/Microsoft/DeveloperTools/.onnxruntime
    /// while the environment is being created, before <see cref="OrtEnv.DisableTelemetryEvents"/> can be called; only
    /// ORT_DISABLE_TELEMETRY in the process's native environment prevents that (.NET's Environment.SetEnvironmentVariable
    /// does not reach it on Unix). An explicit value set by the operator is kept.</summary>
    private static void DisableNativeTelemetry()
    {
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
        {
            _ = SetEnv("ORT_DISABLE_TELEMETRY", "1", overwrite: 0);
        }
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    /// <summary>Whether ONNX Runtime's log comes through this class (see <see cref="Instance"/>).</summary>
    public static bool CapturesLog
    {
        get
        {
            _ = Instance;
            return _capturesLog;
        }
    }

    /// <summary>Runs <paramref name="action"/> and returns what ONNX Runtime logged on this thread meanwhile
    /// (warnings and errors), also when it throws: the exception's <c>Data["OrtLog"]</c> then holds the lines.</summary>
    public static T Capture<T>(Func<T> action, out IReadOnlyList<string> log)
    {
        _ = Instance;
        var previous = _capture;
        var lines = new List<string>();
        _capture = lines;
        log = lines;
        try
        {
            return action();
        }
        catch (Exception e)
        {
            e.Data["OrtLog"] = lines.ToArray();
            throw;
        }
        finally
        {
            _capture = previous;
        }
    }

    /// <summary>The first "Failed to load library ..." line of a captured log, the cause ONNX Runtime's exception
    /// leaves out (e.g. "... libonnxruntime_providers_cuda.so with error: libcudart.so.13: cannot open shared object
    /// file"), or null.</summary>
    public static string? FirstLoadFailure(IEnumerable<string> log) =>
        log.Select(l => l.Trim()).FirstOrDefault(l => l.Contains("Failed to load library", StringComparison.Ordinal));

    private static void Log(IntPtr param, OrtLoggingLevel severity, string category, string logId, string codeLocation, string message)
    {
        _capture?.Add(message);
        Console.Error.WriteLine($"onnxruntime {Level(severity)} [{logId}] {codeLocation}: {message}");
    }

    private static string Level(OrtLoggingLevel severity) => severity switch
    {
        OrtLoggingLevel.ORT_LOGGING_LEVEL_VERBOSE => "verbose",
        OrtLoggingLevel.ORT_LOGGING_LEVEL_INFO => "info",
        OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING => "warning",
        OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR => "error",
        _ => "fatal",
    };
}
