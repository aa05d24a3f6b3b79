namespace MambaSt.Batch.Inference;

/// <summary>Turns a style image into tokens. Implementations are thread-safe.</summary>
public interface IStyleEncoder
{
    ModelInfo Model { get; }

    /// <summary>The token grid (width, height in tokens) <see cref="EncodeStyle"/> produces for a style of this size.</summary>
    (int GridWidth, int GridHeight) StyleGrid(int width, int height);

    StyleEncoding EncodeStyle(RgbPixels style);
}

/// <summary>Stylizes same-size content images with one style in one run. Implementations are thread-safe.</summary>
public interface IStylizer
{
    ModelInfo Model { get; }

    /// <summary>Longest content side accepted by <see cref="Stylize"/>.</summary>
    int MaxSide { get; }

    /// <summary>Cancelling <paramref name="cancellationToken"/> stops the run (between the model's operators) with
    /// <see cref="OperationCanceledException"/>.</summary>
    IReadOnlyList<StylizedImage> Stylize(StyleEncoding style, IReadOnlyList<ContentItem> batch, CancellationToken cancellationToken = default);
}
