using System.Numerics.Tensors;
using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Inference;

/// <summary>Conversions between interleaved RGB8 and the graphs' NCHW float tensors in [0, 1].</summary>
public static class ImageTensor
{
    public const int PatchSize = 8;
    public const int MinContentSide = 16;

    private const float ByteToUnit = 1f / 255f;

    public static int PadToPatch(int side) => (side + PatchSize - 1) / PatchSize * PatchSize;

    /// <summary>Writes one image as planes [3, paddedHeight, paddedWidth], reflect-padding the bottom and right
    /// edges (mirror without repeating the edge pixel, as ReflectionPad2d).</summary>
    public static void WriteReflectPadded(RgbPixels image, Span<float> planes, int paddedHeight, int paddedWidth)
    {
        int w = image.Width, h = image.Height;
        if (paddedHeight < h || paddedWidth < w || paddedHeight - h >= h || paddedWidth - w >= w)
        {
            throw new ArgumentException($"Cannot reflect-pad {w}x{h} to {paddedWidth}x{paddedHeight}.");
        }

        var plane = paddedHeight * paddedWidth;
        if (planes.Length < 3 * plane)
        {
            throw new ArgumentException("Destination is smaller than 3 planes.", nameof(planes));
        }

        var rgb = image.Rgb.Span;
        var r = planes[..plane];
        var g = planes.Slice(plane, plane);
        var b = planes.Slice(2 * plane, plane);
        for (var y = 0; y < paddedHeight; y++)
        {
            var sy = y < h ? y : 2 * (h - 1) - y;
            var src = rgb.Slice(sy * w * 3, w * 3);
            var o = y * paddedWidth;
            var rr = r.Slice(o, paddedWidth);
            var gg = g.Slice(o, paddedWidth);
            var bb = b.Slice(o, paddedWidth);
            for (var x = 0; x < w; x++)
            {
                rr[x] = src[3 * x] * ByteToUnit;
                gg[x] = src[3 * x + 1] * ByteToUnit;
                bb[x] = src[3 * x + 2] * ByteToUnit;
            }

            for (var x = w; x < paddedWidth; x++)
            {
                var sx = 2 * (w - 1) - x;
                rr[x] = rr[sx];
                gg[x] = gg[sx];
                bb[x] = bb[sx];
            }
        }
    }

    /// <summary>Reads the top-left width x height of planes [3, paddedHeight, paddedWidth] into RGB8,
    /// clamping to [0, 1] and rounding to nearest; NaN becomes 0.</summary>
    public static void ReadCropped(ReadOnlySpan<float> planes, int paddedHeight, int paddedWidth, int width, int height, Span<byte> rgb)
    {
        var plane = paddedHeight * paddedWidth;
        if (planes.Length < 3 * plane || rgb.Length < 3 * width * height || width > paddedWidth || height > paddedHeight)
        {
            throw new ArgumentException("Buffer sizes do not match the image.");
        }

        Span<float> row = width <= 4096 ? stackalloc float[3 * width] : new float[3 * width];
        var rRow = row[..width];
        var gRow = row.Slice(width, width);
        var bRow = row.Slice(2 * width, width);
        for (var y = 0; y < height; y++)
        {
            var o = y * paddedWidth;
            ScaleClamp(planes.Slice(o, width), rRow);
            ScaleClamp(planes.Slice(plane + o, width), gRow);
            ScaleClamp(planes.Slice(2 * plane + o, width), bRow);
            var dst = rgb.Slice(y * width * 3, width * 3);
            for (var x = 0; x < width; x++)
            {
                dst[3 * x] = (byte)(int)rRow[x];
                dst[3 * x + 1] = (byte)(int)gRow[x];
                dst[3 * x + 2] = (byte)(int)bRow[x];
            }
        }
    }

    // v -> clamp(v * 255 + 0.5, 0, 255.49): truncation then rounds to nearest. Max/Min drop NaN to a bound.
    private static void ScaleClamp(ReadOnlySpan<float> source, Span<float> destination)
    {
        TensorPrimitives.Multiply(source, 255f, destination);
        TensorPrimitives.Add(destination, 0.5f, destination);
        TensorPrimitives.Max(destination, 0f, destination);
        TensorPrimitives.Min(destination, 255.49f, destination);
        for (var i = 0; i < destination.Length; i++)
        {
            if (float.IsNaN(destination[i]))
            {
                destination[i] = 0f;
            }
        }
    }

    /// <summary>Replaces the chroma of <paramref name="stylized"/> (RGB8, in place) with the content's,
    /// keeping the stylized luminance: full-range BT.601 YCbCr, Y from the output, Cb and Cr from the content.</summary>
    public static void PreserveColor(ReadOnlySpan<byte> content, Span<byte> stylized)
    {
        if (content.Length != stylized.Length || content.Length % 3 != 0)
        {
            throw new ArgumentException("Content and stylized buffers differ in size.");
        }

        for (var i = 0; i < content.Length; i += 3)
        {
            float cr = content[i], cg = content[i + 1], cb = content[i + 2];
            var y = 0.299f * stylized[i] + 0.587f * stylized[i + 1] + 0.114f * stylized[i + 2];
            var chromaB = -0.168736f * cr - 0.331264f * cg + 0.5f * cb;
            var chromaR = 0.5f * cr - 0.418688f * cg - 0.081312f * cb;
            stylized[i] = ToByte(y + 1.402f * chromaR);
            stylized[i + 1] = ToByte(y - 0.344136f * chromaB - 0.714136f * chromaR);
            stylized[i + 2] = ToByte(y + 1.772f * chromaB);
        }
    }

    private static byte ToByte(float v) => (byte)Math.Clamp((int)MathF.Round(v), 0, 255);

    /// <summary>Scales a style image so that its longest side is at most <paramref name="maxSide"/> (area average),
    /// then centre-crops each side down to a multiple of 8.</summary>
    public static RgbPixels FitStyle(RgbPixels style, int maxSide)
    {
        var (w, h) = FittedStyleSize(style.Width, style.Height, maxSide, out var scaledW, out var scaledH);
        var scaled = scaledW == style.Width && scaledH == style.Height ? style : ResizeArea(style, scaledW, scaledH);
        return w == scaledW && h == scaledH ? scaled : CenterCrop(scaled, w, h);
    }

    /// <summary>The size <see cref="FitStyle"/> produces (multiples of 8), without doing it.</summary>
    public static (int Width, int Height) FittedStyleSize(int width, int height, int maxSide, out int scaledWidth, out int scaledHeight)
    {
        scaledWidth = width;
        scaledHeight = height;
        var longest = Math.Max(width, height);
        if (longest > maxSide)
        {
            var scale = (double)maxSide / longest;
            scaledWidth = Math.Max(1, (int)Math.Round(width * scale));
            scaledHeight = Math.Max(1, (int)Math.Round(height * scale));
        }

        if (scaledWidth < PatchSize || scaledHeight < PatchSize)
        {
            throw new InferenceException(StylizationErrorCode.InvalidImage,
                $"Style image {width}x{height} is too small: each side must be at least {PatchSize} px after fitting to {maxSide} px.");
        }

        return (scaledWidth / PatchSize * PatchSize, scaledHeight / PatchSize * PatchSize);
    }

    public static RgbPixels CenterCrop(RgbPixels image, int width, int height)
    {
        var x0 = (image.Width - width) / 2;
        var y0 = (image.Height - height) / 2;
        var dst = new byte[3 * width * height];
        var src = image.Rgb.Span;
        for (var y = 0; y < height; y++)
        {
            src.Slice(((y0 + y) * image.Width + x0) * 3, width * 3).CopyTo(dst.AsSpan(y * width * 3));
        }

        return new RgbPixels(dst, width, height);
    }

    /// <summary>Area-average (box) resampling, meant for shrinking.</summary>
    public static RgbPixels ResizeArea(RgbPixels image, int width, int height)
    {
        var horizontal = new float[image.Height * width * 3];
        var (xStart, xWeights) = AreaWeights(image.Width, width);
        var src = image.Rgb.Span;
        for (var y = 0; y < image.Height; y++)
        {
            var row = src.Slice(y * image.Width * 3, image.Width * 3);
            var dstRow = horizontal.AsSpan(y * width * 3, width * 3);
            for (var x = 0; x < width; x++)
            {
                float r = 0, g = 0, b = 0;
                var weights = xWeights[x];
                for (var k = 0; k < weights.Length; k++)
                {
                    var s = 3 * (xStart[x] + k);
                    r += weights[k] * row[s];
                    g += weights[k] * row[s + 1];
                    b += weights[k] * row[s + 2];
                }

                dstRow[3 * x] = r;
                dstRow[3 * x + 1] = g;
                dstRow[3 * x + 2] = b;
            }
        }

        var (yStart, yWeights) = AreaWeights(image.Height, height);
        var dst = new byte[height * width * 3];
        var acc = new float[width * 3];
        for (var y = 0; y < height; y++)
        {
            Array.Clear(acc);
            var weights = yWeights[y];
            for (var k = 0; k < weights.Length; k++)
            {
                TensorPrimitives.MultiplyAdd(horizontal.AsSpan((yStart[y] + k) * width * 3, width * 3), weights[k], acc, acc);
            }

            var dstRow = dst.AsSpan(y * width * 3, width * 3);
            for (var i = 0; i < acc.Length; i++)
            {
                dstRow[i] = (byte)Math.Clamp((int)(acc[i] + 0.5f), 0, 255);
            }
        }

        return new RgbPixels(dst, width, height);
    }

    private static (int[] Start, float[][] Weights) AreaWeights(int source, int destination)
    {
        var scale = (double)source / destination;
        var start = new int[destination];
        var weights = new float[destination][];
        for (var i = 0; i < destination; i++)
        {
            var lo = i * scale;
            var hi = Math.Min(source, (i + 1) * scale);
            var first = (int)Math.Floor(lo);
            var last = Math.Min(source - 1, (int)Math.Ceiling(hi) - 1);
            start[i] = first;
            var w = new float[last - first + 1];
            for (var s = first; s <= last; s++)
            {
                w[s - first] = (float)((Math.Min(hi, s + 1) - Math.Max(lo, s)) / (hi - lo));
            }

            weights[i] = w;
        }

        return (start, weights);
    }
}
