using System.ComponentModel.DataAnnotations;

namespace MambaSt.Batch.Inference;

public enum ExecutionProviderKind
{
    Cpu,
    Cuda,
}

public enum CudaFallback
{
    /// <summary>Refuse to start when CUDA cannot be used.</summary>
    Fail,

    /// <summary>Log a warning and run on the CPU.</summary>
    Cpu,
}

/// <summary>Which selective-scan implementation the engine runs (<see cref="InferenceOptions.Scan"/>).</summary>
public enum ScanMode
{
    /// <summary>Fused when the model has fused graphs and the custom-op library loads; otherwise the plain-ONNX
    /// graphs, with one warning that says why.</summary>
    Auto,

    /// <summary>The fused graphs and libmambast_ops.so, or a start-up error.</summary>
    Fused,

    /// <summary>The plain-ONNX graphs (a Loop over tokens; about 3.5x slower on a CPU); the library is not loaded.</summary>
    Sequential,
}

/// <summary>Settings of the ONNX Runtime engine, bound from the configuration section "Inference".</summary>
public sealed class InferenceOptions : IValidatableObject
{
    public const string SectionName = "Inference";

    /// <summary>Folder holding style_encoder.onnx and stylizer.onnx.</summary>
    [Required]
    public string ModelDirectory { get; set; } = "";

    public ExecutionProviderKind ExecutionProvider { get; set; } = ExecutionProviderKind.Cpu;

    [Range(0, 64)]
    public int DeviceId { get; set; }

    /// <summary>CUDA arena limit in MiB; 0 leaves ONNX Runtime's default (no limit).</summary>
    [Range(0, 1 << 20)]
    public int GpuMemoryLimitMb { get; set; }

    /// <summary>cuDNN convolution algorithm search: exhaustive when true, heuristic otherwise.</summary>
    public bool CudnnExhaustiveSearch { get; set; }

    public CudaFallback CudaFallback { get; set; } = CudaFallback.Fail;

    /// <summary>Threads inside one operator; 0: the CPUs this process may use (Environment.ProcessorCount, which
    /// honours a container's CPU limit; ONNX Runtime's own default would count the node's cores).</summary>
    [Range(0, 256)]
    public int IntraOpThreads { get; set; }

    [Range(0, 256)]
    public int InterOpThreads { get; set; }

    /// <summary>Longest side of a content image the engine accepts; callers shrink on decode.</summary>
    [Range(16, 16384)]
    public int MaxSide { get; set; } = 1024;

    /// <summary>Longest side a style image is scaled down to before encoding.</summary>
    [Range(8, 16384)]
    public int StyleMaxSide { get; set; } = 512;

    /// <summary>Bytes of style tokens kept by <see cref="StyleEncodingCache"/>; 0 disables caching.</summary>
    [Range(0L, long.MaxValue)]
    public long StyleCacheBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Stylize images larger than <see cref="TileSize"/> in overlapping tiles.</summary>
    public bool TilingEnabled { get; set; }

    [Range(16, 16384)]
    public int TileSize { get; set; } = 512;

    [Range(0, 8192)]
    public int TileOverlap { get; set; } = 64;

    /// <summary>Tiles stylized in one ONNX Runtime run.</summary>
    [Range(1, 64)]
    public int TileBatchSize { get; set; } = 2;

    /// <summary>Selective scan: <c>auto</c> (default), <c>fused</c> or <c>sequential</c> (environment:
    /// <c>Inference__Scan</c>). See docs/inference.md.</summary>
    [EnumDataType(typeof(ScanMode))]
    public ScanMode Scan { get; set; } = ScanMode.Auto;

    /// <summary>The fused-scan custom-op library (native/, libmambast_ops.so). A relative path resolves against the
    /// application directory; with the default name, a development checkout's artifacts/native/ (scripts/build-native.sh)
    /// is looked at too.</summary>
    public string CustomOpLibrary { get; set; } = DefaultCustomOpLibrary;

    public const string DefaultCustomOpLibrary = "libmambast_ops.so";

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (TileSize % 8 != 0)
        {
            yield return new ValidationResult($"{nameof(TileSize)} must be a multiple of 8 (got {TileSize}).", [nameof(TileSize)]);
        }

        if (TileOverlap * 2 >= TileSize)
        {
            yield return new ValidationResult(
                $"{nameof(TileOverlap)} ({TileOverlap}) must be less than half of {nameof(TileSize)} ({TileSize}).", [nameof(TileOverlap)]);
        }

        if (!string.IsNullOrWhiteSpace(ModelDirectory))
        {
            foreach (var file in new[] { ModelFiles.StyleEncoder, ModelFiles.Stylizer })
            {
                var path = Path.Combine(ModelDirectory, file);
                if (!File.Exists(path))
                {
                    yield return new ValidationResult($"{nameof(ModelDirectory)}: {path} does not exist.", [nameof(ModelDirectory)]);
                }
            }
        }
    }
}

public static class ModelFiles
{
    public const string StyleEncoder = "style_encoder.onnx";
    public const string Stylizer = "stylizer.onnx";
}
