namespace MambaSt.Batch.Imaging;

/// <summary>8-bit sRGB pixels, interleaved R, G, B, row-major, stride = 3 * Width.</summary>
public sealed class RgbImage
{
    public RgbImage(int width, int height, byte[] pixels)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if (pixels.LongLength != 3L * width * height)
        {
            throw new ArgumentException($"{pixels.Length} bytes is not 3 x {width} x {height}", nameof(pixels));
        }

        Width = width;
        Height = height;
        Pixels = pixels;
    }

    public int Width { get; }

    public int Height { get; }

    public int Stride => 3 * Width;

    public byte[] Pixels { get; }

    /// <summary>What the decoder saw; null for images not produced by a decode.</summary>
    public ImageDecodeInfo? Source { get; init; }

    public ReadOnlySpan<byte> Pixel(int x, int y) => Pixels.AsSpan((y * Width + x) * 3, 3);
}

public enum SourceImageFormat
{
    Jpeg,
    Png,
    Webp,
    Tiff,
    Heif,
    Avif,
    Gif,
}

/// <summary>Facts about the encoded input, read from its header.</summary>
public sealed record ImageDecodeInfo
{
    public required SourceImageFormat Format { get; init; }

    /// <summary>Stored width, before orientation and shrinking.</summary>
    public required int OriginalWidth { get; init; }

    public required int OriginalHeight { get; init; }

    /// <summary>EXIF orientation tag (1-8), 1 when absent.</summary>
    public required int Orientation { get; init; }

    public bool OrientationApplied => Orientation is > 1 and <= 8;

    public required bool HadAlpha { get; init; }

    public required bool HadIccProfile { get; init; }

    /// <summary>Bands in the source: 1 grey, 3 RGB, 4 CMYK or RGBA, ...</summary>
    public required int Bands { get; init; }

    /// <summary>Bits per sample in the source (8 or 16 usually).</summary>
    public required int BitsPerSample { get; init; }
}

public sealed record DecodeOptions
{
    public static DecodeOptions Default { get; } = new();

    /// <summary>Shrink (never enlarge) so the longest side is at most this many pixels; null keeps the size.</summary>
    public int? MaxSide { get; init; }
}

public sealed record EncodeOptions
{
    public Contracts.OutputFormat Format { get; init; } = Contracts.OutputFormat.Jpeg;

    /// <summary>1-100, for JPEG and WebP.</summary>
    public int Quality { get; init; } = 90;

    /// <summary>Progressive (interlaced) JPEG or interlaced PNG.</summary>
    public bool Progressive { get; init; }

    /// <summary>False (default): the output carries no metadata at all. True: an sRGB ICC profile is
    /// embedded, describing the pixels; no EXIF, GPS, XMP or IPTC is ever copied from the source.</summary>
    public bool KeepMetadata { get; init; }
}
