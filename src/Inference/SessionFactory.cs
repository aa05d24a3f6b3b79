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
    public static SessionOptions CreateOptions(InferenceOptions options, IReadOnlyList<string> customDomains, ILogger logger,
        out ExecutionProviderKind provider, bool forceCpu = false)
    {
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
            if (customDomains.Count > 0)
            {
                sessionOptions.RegisterCustomOpLibrary(ResolveCustomOpLibrary(options, customDomains));
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
        var available = OrtEnv.Instance().GetAvailableProviders();
        if (!available.Contains(CudaProviderName))
        {
            return $"this ONNX Runtime build has no {CudaProviderName} (available: {string.Join(", ", available)}); " +
                   "build with -p:OnnxRuntimeFromNuGet=true to use Microsoft.ML.OnnxRuntime.Gpu.";
        }

        try
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
            return null;
        }
        catch (OnnxRuntimeException e)
        {
            return $"ONNX Runtime could not start the CUDA provider on device {options.DeviceId}: {e.Message}";
        }
    }

    private static string ResolveCustomOpLibrary(InferenceOptions options, IReadOnlyList<string> customDomains)
    {
        var path = Path.IsPathRooted(options.CustomOpLibrary)
            ? options.CustomOpLibrary
            : Path.Combine(AppContext.BaseDirectory, options.CustomOpLibrary);
        if (!File.Exists(path))
        {
            throw new InferenceException(StylizationErrorCode.ModelError,
                $"The model in {options.ModelDirectory} uses the custom operator domain(s) {string.Join(", ", customDomains)}, " +
                $"which need the custom-op library {path} (Inference:CustomOpLibrary). It does not exist: build it with " +
                "`make native` and copy libmambast_ops.so next to the application, or export the model without custom ops " +
                "(python -m mambast.export expands SelectiveScan into standard ops).");
        }

        return path;
    }

    public static InferenceSession Open(string path, SessionOptions sessionOptions)
    {
        try
        {
            return new InferenceSession(path, sessionOptions);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InferenceException(StylizationErrorCode.ModelError, $"{path}: ONNX Runtime cannot load the model: {e.Message}", e);
        }
    }
}
