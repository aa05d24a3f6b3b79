namespace MambaSt.Batch.Processing.Ports;

/// <summary>The model as the pipeline uses it: encode a style once, stylize same-size batches.</summary>
public interface IStyleTransfer
{
    ModelIdentity Model { get; }

    /// <summary>The longest side the model accepts; inputs are shrunk on decode to at most this.</summary>
    int MaxSide { get; }

    /// <summary>Encodes a style, or returns the cached encoding for <paramref name="styleKey"/>.</summary>
    StyleHandle GetStyle(string styleKey, Func<RgbFrame> decodeStyle, out bool cacheHit);

    /// <summary>Stylizes same-size content images with one style in one run. Results in input order. Cancelling
    /// <paramref name="cancellationToken"/> stops the run with <see cref="OperationCanceledException"/>.</summary>
    IReadOnlyList<RgbFrame> Stylize(StyleHandle style, IReadOnlyList<StylizeItem> items, CancellationToken cancellationToken);
}

public sealed record ModelIdentity(string Id, string Version);

/// <summary>An encoded style, owned by the style-transfer implementation.</summary>
public abstract class StyleHandle;

public sealed record StylizeItem(RgbFrame Content, long Seed, float Strength, bool PreserveColor);
