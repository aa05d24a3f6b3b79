using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Inference;

/// <summary>
/// Stylizes images larger than one model run allows: overlapping tiles of <see cref="InferenceOptions.TileSize"/>,
/// stylized in batches of <see cref="InferenceOptions.TileBatchSize"/>, blended with linear ramps across each
/// <see cref="InferenceOptions.TileOverlap"/>. Model memory is bounded by the tile batch; the blend buffers hold
/// 16 bytes per output pixel. Thread-safe when the wrapped <see cref="IStylizer"/> is.
/// </summary>
public sealed class TiledStylizer(IStylizer stylizer, InferenceOptions options)
{
    /// <summary>Longest side accepted: the blend buffers of a 16384 x 16384 image take 4 GiB.</summary>
    public const int MaxTiledSide = 16384;

    private readonly int _tileSize = options.TileSize;
    private readonly int _overlap = options.TileOverlap;
    private readonly int _tileBatch = options.TileBatchSize;

    /// <summary>Start offsets of the tiles along one axis: step TileSize - Overlap, the last one flush with the edge.</summary>
    public static int[] TileStarts(int length, int tileSize, int overlap)
    {
        if (length <= tileSize)
        {
            return [0];
        }

        var step = tileSize - overlap;
        var starts = new List<int>();
        for (var s = 0; ; s += step)
        {
            if (s + tileSize >= length)
            {
                starts.Add(length - tileSize);
                break;
            }

            starts.Add(s);
        }

        return [.. starts];
    }

    /// <summary>Blend weight of position <paramref name="p"/> in a tile of <paramref name="size"/> along one axis: a ramp
    /// (p + 1) / (overlap + 1) up from an edge shared with a previous tile and down to an edge shared with a next one.</summary>
    public static float RampWeight(int p, int size, int overlap, bool hasPrevious, bool hasNext)
    {
        var w = 1f;
        if (hasPrevious)
        {
            w = Math.Min(w, (p + 1f) / (overlap + 1f));
        }

        if (hasNext)
        {
            w = Math.Min(w, (size - p) / (overlap + 1f));
        }

        return w;
    }

    /// <summary>Cancellation is checked before each tile batch and passed into each model run.</summary>
    public StylizedImage Stylize(StyleEncoding style, ContentItem item, CancellationToken cancellationToken = default)
    {
        var image = item.Content;
        int width = image.Width, height = image.Height;
        if (Math.Max(width, height) <= stylizer.MaxSide && Math.Max(width, height) <= _tileSize)
        {
            return stylizer.Stylize(style, [item], cancellationToken)[0];
        }

        if (Math.Max(width, height) > MaxTiledSide)
        {
            throw new InferenceException(StylizationErrorCode.ImageTooLarge,
                $"Content image {width}x{height} exceeds the tiled limit of {MaxTiledSide} px on its longest side.");
        }

        var xs = TileStarts(width, _tileSize, _overlap);
        var ys = TileStarts(height, _tileSize, _overlap);
        int tileW = Math.Min(width, _tileSize), tileH = Math.Min(height, _tileSize);
        var tiles = new List<(int X, int Y, int Col, int Row)>();
        for (var r = 0; r < ys.Length; r++)
        {
            for (var c = 0; c < xs.Length; c++)
            {
                tiles.Add((xs[c], ys[r], c, r));
            }
        }

        var sum = new float[3 * width * height];
        var weight = new float[width * height];
        var rowWeights = new float[tileW];
        for (var first = 0; first < tiles.Count; first += _tileBatch)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var group = tiles.GetRange(first, Math.Min(_tileBatch, tiles.Count - first));
            var batch = group.Select(t => item with
            {
                Content = Crop(image, t.X, t.Y, tileW, tileH),
                PreserveContentColor = false,
            }).ToArray();
            var outputs = stylizer.Stylize(style, batch, cancellationToken);
            for (var k = 0; k < group.Count; k++)
            {
                var (x0, y0, col, row) = group[k];
                for (var x = 0; x < tileW; x++)
                {
                    rowWeights[x] = RampWeight(x, tileW, _overlap, col > 0, col < xs.Length - 1);
                }

                var rgb = outputs[k].Pixels.Rgb.Span;
                for (var y = 0; y < tileH; y++)
                {
                    var wy = RampWeight(y, tileH, _overlap, row > 0, row < ys.Length - 1);
                    var src = rgb.Slice(y * tileW * 3, tileW * 3);
                    var o = (y0 + y) * width + x0;
                    var dst = sum.AsSpan(3 * o, 3 * tileW);
                    var wRow = weight.AsSpan(o, tileW);
                    for (var x = 0; x < tileW; x++)
                    {
                        var w = wy * rowWeights[x];
                        dst[3 * x] += w * src[3 * x];
                        dst[3 * x + 1] += w * src[3 * x + 1];
                        dst[3 * x + 2] += w * src[3 * x + 2];
                        wRow[x] += w;
                    }
                }
            }
        }

        var result = new byte[3 * width * height];
        for (var p = 0; p < weight.Length; p++)
        {
            var inv = 1f / weight[p];
            result[3 * p] = (byte)Math.Clamp((int)(sum[3 * p] * inv + 0.5f), 0, 255);
            result[3 * p + 1] = (byte)Math.Clamp((int)(sum[3 * p + 1] * inv + 0.5f), 0, 255);
            result[3 * p + 2] = (byte)Math.Clamp((int)(sum[3 * p + 2] * inv + 0.5f), 0, 255);
        }

        if (item.PreserveContentColor)
        {
            ImageTensor.PreserveColor(image.Rgb.Span, result);
        }

        return new StylizedImage { Pixels = new RgbPixels(result, width, height), Seed = item.Seed, Strength = item.Strength };
    }

    private static RgbPixels Crop(RgbPixels image, int x0, int y0, int width, int height)
    {
        var dst = new byte[3 * width * height];
        var src = image.Rgb.Span;
        for (var y = 0; y < height; y++)
        {
            src.Slice(((y0 + y) * image.Width + x0) * 3, width * 3).CopyTo(dst.AsSpan(y * width * 3));
        }

        return new RgbPixels(dst, width, height);
    }
}
