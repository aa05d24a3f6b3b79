namespace MambaSt.Batch.Contracts;

/// <summary>How one job is stylized and encoded. Every property has a default, so <c>{}</c> is valid.</summary>
public record StylizeOptions
{
    /// <summary>The default of <see cref="MaxSide"/>.</summary>
    public const int DefaultMaxSide = 1024;

    /// <summary>The output's longest side in pixels; larger inputs are shrunk on load.</summary>
    public int MaxSide { get; init; } = DefaultMaxSide;

    /// <summary>The output's encoding.</summary>
    public OutputFormat Format { get; init; } = OutputFormat.Jpeg;

    /// <summary>Encoder quality 1-100 (JPEG and WebP).</summary>
    public int Quality { get; init; } = 90;

    /// <summary>Seeds the style-token permutation: same inputs and seed give the same bytes.</summary>
    public long Seed { get; init; }

    /// <summary>0 reconstructs the content, 1 is full style.</summary>
    public float Strength { get; init; } = 1.0f;

    /// <summary>Keep the content's colours: transfer only luminance structure of the style.</summary>
    public bool PreserveColor { get; init; }
}

/// <summary>Output encodings. On the wire as the member's number (<c>Jpeg</c> = 0): never renumber.</summary>
public enum OutputFormat
{
    /// <summary>JPEG (lossy, <see cref="StylizeOptions.Quality"/> applies).</summary>
    Jpeg,

    /// <summary>PNG (lossless).</summary>
    Png,

    /// <summary>WebP (lossy, <see cref="StylizeOptions.Quality"/> applies).</summary>
    Webp,
}
