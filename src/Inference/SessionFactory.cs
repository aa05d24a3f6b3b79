using System.Globalization;
using MambaSt.Batch.Contracts;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace MambaSt.Batch.Inference;

/// <summary>Builds the <see cref="SessionOptions"/> for the configured execution provider and opens graphs with it.</summary>
internal static class SessionFactory
{
    public const string CudaProviderName = "CUDAExecutionProvider";

    /// <summary>Creates session options; the caller owns (and disposes) the result. Falls back to the CPU or throws
    /// as <see cref="InferenceOptions.CudaFallback"/> says when CUDA cannot be used.</summary>
    public static SessionOptions CreateOptions(InferenceOptions options, string? customOpLibrary, ILogger logger,
        out ExecutionProviderKind provider, bool forceCpu = false)
    {
        _ = OrtEnvironment.Instance;
        var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = IntraOpThreads(options),
            InterOpNumThreads = options.InterOpThreads,
            LogId = "mambast",
        };
        try
        {
            if (customOpLibrary is not null)
            {
                sessionOptions.RegisterCustomOpLibrary(customOpLibrary);
            }

            provider = ExecutionProviderKind.Cpu;
            if (options.ExecutionProvider == ExecutionProviderKind.Cuda && !forceCpu)
            {
                var failure = TryAppendCuda(sessionOptions, options);
                if (failure is null)
                {
                    provider = ExecutionProviderKind.Cuda;
                }
                else if (options.CudaFallback == CudaFallback.Fail)
                {
                    throw new InferenceException(StylizationErrorCode.ModelError,
                        $"Inference:ExecutionProvider is Cuda but CUDA cannot be used: {failure} " +
                        "Set Inference:CudaFallback=Cpu to run on the CPU instead.");
                }
                else
                {
                    logger.LogWarning("CUDA requested but unavailable ({Reason}); Inference:CudaFallback=Cpu, running on the CPU", failure);
                }
            }

            return sessionOptions;
        }
        catch
        {
            sessionOptions.Dispose();
            throw;
        }
    }

    /// <summary>0 means the CPUs this process may use: <see cref="Environment.ProcessorCount"/> honours a container's
    /// CPU limit (cgroup quota), where ONNX Runtime's own default counts the node's cores and oversubscribes a
    /// pod limited to a few of them.</summary>
    internal static int IntraOpThreads(InferenceOptions options) =>
        options.IntraOpThreads > 0 ? options.IntraOpThreads : Environment.ProcessorCount;

    private static string? TryAppendCuda(SessionOptions sessionOptions, InferenceOptions options)
    {
        var available = OrtEnvironment.Instance.GetAvailableProviders();
        if (!available.Contains(CudaProviderName))
        {
            return $"this ONNX Runtime build has no {CudaProviderName} (available: {string.Join(", ", available)}); " +
                   "build with -p:OnnxRuntimeFlavor=Cuda (Microsoft.ML.OnnxRuntime.Managed + Microsoft.ML.OnnxRuntime.Gpu.Linux).";
        }

        IReadOnlyList<string> log = [];
        try
        {
            OrtEnvironment.Capture(() => AppendCuda(sessionOptions, options), out log);
            return null;
        }
        catch (OnnxRuntimeException e)
        {
            // Which library failed and why ("Failed to load library ...: libcublasLt.so.13: cannot open shared object
            // file") is in 1.32's exception on this path, but on others only in ONNX Runtime's log: take it from there.
            var cause = OrtEnvironment.FirstLoadFailure(log);
            return $"ONNX Runtime could not start the CUDA provider on device {options.DeviceId}: {e.Message}" +
                   (cause is null || e.Message.Contains(cause, StringComparison.Ordinal) ? "" : $" ONNX Runtime's log: {cause}");
        }
    }

    private static bool AppendCuda(SessionOptions sessionOptions, InferenceOptions options)
    {
        using var cuda = new OrtCUDAProviderOptions();
        var settings = new Dictionary<string, string>
        {
            ["device_id"] = options.DeviceId.ToString(CultureInfo.InvariantCulture),
            ["cudnn_conv_algo_search"] = options.CudnnExhaustiveSearch ? "EXHAUSTIVE" : "HEURISTIC",
            // Batches come in many sizes: grow the GPU arena by what a run needs, not to the next
            // power of two (which can double the peak and never comes back).
            ["arena_extend_strategy"] = "kSameAsRequested",
        };
        if (options.GpuMemoryLimitMb > 0)
        {
            settings["gpu_mem_limit"] = ((long)options.GpuMemoryLimitMb * 1024 * 1024).ToString(CultureInfo.InvariantCulture);
        }

        cuda.UpdateOptions(settings);
        sessionOptions.AppendExecutionProvider_CUDA(cuda);
        return true;
    }

    public static InferenceSession Open(string path, SessionOptions sessionOptions, ExecutionProviderKind provider = ExecutionProviderKind.Cpu)
    {
        IReadOnlyList<string> log = [];
        try
        {
            return OrtEnvironment.Capture(() => new InferenceSession(path, sessionOptions), out log);
        }
        catch (OnnxRuntimeException e)
        {
            var cause = provider == ExecutionProviderKind.Cuda ? OrtEnvironment.FirstLoadFailure(log) : null;
            cause = cause is not null && e.Message.Contains(cause, StringComparison.Ordinal) ? null : cause;
            throw new InferenceException(StylizationErrorCode.ModelError,
                $"{path}: ONNX Runtime cannot load the model: {e.Message}{(cause is null ? "" : $" ONNX Runtime's log: {cause}")}", e);
        }
    }
}
