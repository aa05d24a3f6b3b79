using MambaSt.Batch.Contracts;
using MambaSt.Batch.Inference;
using MambaSt.Batch.Testing;
using Microsoft.Extensions.Logging;

namespace MambaSt.Batch.OnnxRuntime.Tests;

/// <summary>The CUDA flavour (Gpu.Linux) on a machine without CUDA 13 / a GPU: ONNX Runtime's exception says only
/// that a shared library failed to load; the engine's message names the library and why, from ONNX Runtime's log.</summary>
public class CudaFailureTests
{
    private static InferenceOptions Options(CudaFallback fallback) => new()
    {
        ModelDirectory = Path.Combine(RepoPaths.Fixtures, "golden", "tiny-sequential"),
        ExecutionProvider = ExecutionProviderKind.Cuda,
        CudaFallback = fallback,
        IntraOpThreads = 1,
    };

    /// <summary>The CUDA runtime the provider links; present only on GPU hosts.</summary>
    private static bool CudaRuntimeInstalled =>
        new[] { "/usr/lib/x86_64-linux-gnu", "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib" }
            .Any(dir => File.Exists(Path.Combine(dir, "libcudart.so.13")));

    [Fact]
    public void This_build_is_the_cuda_flavour()
    {
        OrtEnvironment.Instance.GetAvailableProviders().ShouldContain(SessionFactory.CudaProviderName);
        File.Exists(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libonnxruntime_providers_cuda.so"))
            .ShouldBeTrue("the Gpu.Linux provider library is copied into the output");
        OrtEnvironment.CapturesLog.ShouldBeTrue();
    }

    [Fact]
    public void A_failed_cuda_start_names_the_library_that_failed_to_load_and_why()
    {
        Assert.SkipWhen(CudaRuntimeInstalled, "the CUDA runtime is installed here");

        var ex = Should.Throw<InferenceException>(() => MambaStEngine.Create(Options(CudaFallback.Fail)));

        ex.Code.ShouldBe(StylizationErrorCode.ModelError);
        ex.Message.ShouldContain("Failed to load library");
        ex.Message.ShouldContain("libonnxruntime_providers_cuda.so");
        ex.Message.ShouldContain("cannot open shared object file"); // dlerror's reason, e.g. libcudart.so.13 missing
        ex.Message.ShouldContain("CudaFallback=Cpu");
    }

    [Fact]
    public void With_fallback_Cpu_the_warning_names_the_library_and_the_engine_runs_on_the_cpu()
    {
        Assert.SkipWhen(CudaRuntimeInstalled, "the CUDA runtime is installed here");
        var logger = new WarningLogger();

        using var engine = MambaStEngine.Create(Options(CudaFallback.Cpu), logger);

        engine.ExecutionProvider.ShouldBe(ExecutionProviderKind.Cpu);
        logger.Warnings.ShouldContain(w => w.Contains("Failed to load library") && w.Contains("libonnxruntime_providers_cuda.so"));
    }

    private sealed class WarningLogger : ILogger<MambaStEngine>
    {
        private readonly List<string> _warnings = [];

        public IReadOnlyList<string> Warnings
        {
            get
            {
                lock (_warnings)
                {
                    return [.. _warnings];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Warning)
            {
                lock (_warnings)
                {
                    _warnings.Add(formatter(state, exception));
                }
            }
        }
    }
}
