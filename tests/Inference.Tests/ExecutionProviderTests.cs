using MambaSt.Batch.Contracts;
using Microsoft.Extensions.Logging;

namespace MambaSt.Batch.Inference.Tests;

/// <summary>This machine's ONNX Runtime has no CUDA provider: the fallback setting decides between a clear error and the CPU.</summary>
public class ExecutionProviderTests
{
    private static InferenceOptions CudaOptions(CudaFallback fallback)
    {
        var options = Golden.Options("sequential");
        options.ExecutionProvider = ExecutionProviderKind.Cuda;
        options.CudaFallback = fallback;
        options.GpuMemoryLimitMb = 512;
        return options;
    }

    [Fact]
    public void Cpu_is_the_default_and_the_startup_line_names_it()
    {
        var logger = new ListLogger<MambaStEngine>();
        using var engine = MambaStEngine.Create(Golden.Options("sequential"), logger);

        engine.ExecutionProvider.ShouldBe(ExecutionProviderKind.Cpu);
        logger.Entries.ShouldContain(e => e.Level == LogLevel.Information && e.Message.Contains("on execution provider Cpu"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    public void Intra_op_threads_0_means_the_cpus_this_process_may_use_not_the_nodes_cores(int configured)
    {
        var options = Golden.Options("sequential");
        options.IntraOpThreads = configured;

        using var session = SessionFactory.CreateOptions(options, null, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, out _, forceCpu: true);

        session.IntraOpNumThreads.ShouldBe(configured > 0 ? configured : Environment.ProcessorCount);
    }

    [Fact]
    public void Cuda_with_fallback_Fail_throws_a_clear_error_when_CUDA_is_missing()
    {
        Assert.SkipWhen(CudaProviderBuiltIn, "this ONNX Runtime build has a CUDA provider");

        var ex = Should.Throw<InferenceException>(() => MambaStEngine.Create(CudaOptions(CudaFallback.Fail)));

        ex.Code.ShouldBe(StylizationErrorCode.ModelError);
        ex.Message.ShouldContain("CUDAExecutionProvider");
        ex.Message.ShouldContain("CudaFallback=Cpu");
    }

    [Fact]
    public void Cuda_with_fallback_Cpu_warns_and_runs_on_the_CPU()
    {
        Assert.SkipWhen(CudaProviderBuiltIn, "this ONNX Runtime build has a CUDA provider");
        var logger = new ListLogger<MambaStEngine>();

        using var engine = MambaStEngine.Create(CudaOptions(CudaFallback.Cpu), logger);

        engine.ExecutionProvider.ShouldBe(ExecutionProviderKind.Cpu);
        logger.Entries.ShouldContain(e => e.Level == LogLevel.Warning && e.Message.Contains("CUDA requested but unavailable"));
        logger.Entries.ShouldContain(e => e.Level == LogLevel.Information && e.Message.Contains("on execution provider Cpu"));
        var style = engine.EncodeStyle(Golden.SmoothImage(32, 32, 1));
        engine.Stylize(style, [new ContentItem { Content = Golden.SmoothImage(32, 32, 2), Seed = 1 }], TestContext.Current.CancellationToken).Count.ShouldBe(1);
    }

    private static bool CudaProviderBuiltIn =>
        OrtEnvironment.Instance.GetAvailableProviders().Contains("CUDAExecutionProvider");
}
