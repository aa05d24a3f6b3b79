using MambaSt.Batch.Contracts;
using MambaSt.Batch.Inference;
using MambaSt.Batch.Processing.Ports;

namespace MambaSt.Batch.Processing.Adapters;

/// <summary>The pipeline's model over <see cref="MambaStEngine"/> and the <see cref="StyleEncodingCache"/>.</summary>
internal sealed class EngineStyleTransfer(IStyleEncoder encoder, IStylizer stylizer, StyleEncodingCache cache) : IStyleTransfer
{
    public ModelIdentity Model { get; } = new(stylizer.Model.Id, stylizer.Model.Version);

    public int MaxSide => stylizer.MaxSide;

    public StyleHandle GetStyle(string styleKey, Func<RgbFrame> decodeStyle, out bool cacheHit)
    {
        var frame = decodeStyle();
        var pixels = new RgbPixels(frame.Rgb, frame.Width, frame.Height);
        var encoded = false;
        var encoding = Map(() =>
        {
            var (gridW, gridH) = encoder.StyleGrid(pixels.Width, pixels.Height);
            var key = new StyleCacheKey(styleKey, $"{encoder.Model.Id}@{encoder.Model.Version}", gridW, gridH);
            return cache.GetOrAdd(key, _ =>
            {
                encoded = true;
                return encoder.EncodeStyle(pixels);
            });
        });
        cacheHit = !encoded;
        return new Handle(encoding);
    }

    public IReadOnlyList<RgbFrame> Stylize(StyleHandle style, IReadOnlyList<StylizeItem> items, CancellationToken cancellationToken)
    {
        var batch = items.Select(i => new ContentItem
        {
            Content = new RgbPixels(i.Content.Rgb, i.Content.Width, i.Content.Height),
            Seed = unchecked((ulong)i.Seed),
            Strength = i.Strength,
            PreserveContentColor = i.PreserveColor,
        }).ToArray();

        var results = Map(() => stylizer.Stylize(((Handle)style).Encoding, batch, cancellationToken));
        return results.Select(r => new RgbFrame(r.Pixels.Rgb.ToArray(), r.Pixels.Width, r.Pixels.Height)).ToArray();
    }

    private static T Map<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (InferenceException e)
        {
            throw ToJobFailure(e);
        }
    }

    /// <summary>ONNX Runtime failing a run (e.g. the GPU arena could not grow) may pass on another try or another
    /// worker: transient (bounded redeliveries). Bad images and the engine's own checks (a wrong output shape)
    /// fail the same way every time: permanent.</summary>
    internal static JobFailedException ToJobFailure(InferenceException e) =>
        new(e.Code, e.InnerException is Microsoft.ML.OnnxRuntime.OnnxRuntimeException, e.Message, e);

    private sealed class Handle(StyleEncoding encoding) : StyleHandle
    {
        public StyleEncoding Encoding { get; } = encoding;
    }
}
