using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Inference;

/// <summary>Interleaved RGB8 pixels, row stride 3 * <see cref="Width"/>.</summary>
public readonly record struct RgbPixels
{
    public RgbPixels(ReadOnlyMemory<byte> rgb, int width, int height)
    {
        if (width <= 0 || height <= 0)
        {
            throw new InferenceException(StylizationErrorCode.InvalidImage, $"Image size {width}x{height} is not positive.");
        }

        if (rgb.Length != 3L * width * height)
        {
            throw new InferenceException(StylizationErrorCode.InvalidImage,
                $"RGB buffer holds {rgb.Length} bytes; a {width}x{height} RGB8 image needs {3L * width * height}.");
        }

        Rgb = rgb;
        Width = width;
        Height = height;
    }

    public ReadOnlyMemory<byte> Rgb { get; }

    public int Width { get; }

    public int Height { get; }
}

/// <summary>One content image of a batch with its own seed (style-token order) and strength.</summary>
public sealed record ContentItem
{
    public required RgbPixels Content { get; init; }

    public required ulong Seed { get; init; }

    /// <summary>Style strength in [0, 1]; 1 is the plain model.</summary>
    public float Strength { get; init; } = 1f;

    /// <summary>Keep the content's chroma and take only the luminance (Y of YCbCr) from the output.</summary>
    public bool PreserveContentColor { get; init; }
}

public sealed record StylizedImage
{
    public required RgbPixels Pixels { get; init; }

    public required ulong Seed { get; init; }

    public required float Strength { get; init; }
}

/// <summary>Identity of the loaded model, read from the graphs' metadata.</summary>
public sealed record ModelInfo
{
    public required string Id { get; init; }

    public required string Version { get; init; }

    public required string Config { get; init; }

    public required string ScanVariant { get; init; }

    public required int DModel { get; init; }

    public required string Provenance { get; init; }

    public required string License { get; init; }
}

/// <summary>A style image encoded to tokens: row-major over a <see cref="GridHeight"/> x <see cref="GridWidth"/>
/// grid, <see cref="DModel"/> floats each. Immutable; safe to share between threads.</summary>
public sealed class StyleEncoding
{
    private readonly float[] _tokens;

    public StyleEncoding(float[] tokens, int gridHeight, int gridWidth, int dModel, string modelId)
    {
        if (tokens.Length != gridHeight * gridWidth * dModel)
        {
            throw new ArgumentException("Token count does not match the grid.", nameof(tokens));
        }

        _tokens = tokens;
        GridHeight = gridHeight;
        GridWidth = gridWidth;
        DModel = dModel;
        ModelId = modelId;
    }

    public ReadOnlyMemory<float> Tokens => _tokens;

    public int GridHeight { get; }

    public int GridWidth { get; }

    public int TokenCount => GridHeight * GridWidth;

    public int DModel { get; }

    /// <summary><see cref="ModelInfo.Id"/> and version of the model that produced the tokens.</summary>
    public string ModelId { get; }

    public long SizeInBytes => (long)_tokens.Length * sizeof(float);
}
