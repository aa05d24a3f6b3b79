namespace MambaSt.Batch.Contracts;

public record StylizeOptions
{
    public const int DefaultMaxSide = 1024;

    /// <summary>The output's longest side in pixels; larger inputs are shrunk on load.</summary>
    public int MaxSide { get; init; } = DefaultMaxSide;

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

public enum OutputFormat
{
    Jpeg,
    Png,
    Webp,
}
