using System.ComponentModel.DataAnnotations;

namespace MambaSt.Batch.Imaging;

/// <summary>Limits and settings for image decoding, bound from the "Imaging" configuration section.</summary>
public sealed class ImagingOptions
{
    public const string SectionName = "Imaging";

    /// <summary>Largest encoded input accepted, in bytes.</summary>
    [Range(1L, 2L * 1024 * 1024 * 1024)]
    public long MaxInputBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>Largest width x height accepted, checked from the header before any pixel is decoded.</summary>
    [Range(1L, 1L << 40)]
    public long MaxPixels { get; set; } = 100_000_000;

    /// <summary>Wall-clock limit for computing the decoded pixels of one image.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00")]
    public TimeSpan DecodeTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>libvips worker threads per operation (process-wide setting).</summary>
    [Range(1, 64)]
    public int Concurrency { get; set; } = 1;
}
