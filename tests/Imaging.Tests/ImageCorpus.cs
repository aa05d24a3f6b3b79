using System.Buffers.Binary;
using NetVips;

namespace MambaSt.Batch.Imaging.Tests;

/// <summary>Builds the test images at run time with libvips through NetVips, the binding the codec uses,
/// so nothing binary is committed. Every image shows four coloured quadrants when displayed upright.</summary>
internal static class ImageCorpus
{
    static ImageCorpus() => VipsLibrary.EnsureInitialized(1);

    public static readonly byte[] Red = [230, 20, 20];
    public static readonly byte[] Green = [20, 200, 40];
    public static readonly byte[] Blue = [30, 40, 220];
    public static readonly byte[] Yellow = [240, 220, 30];

    /// <summary>Top-left, top-right, bottom-left, bottom-right.</summary>
    public static readonly byte[][] QuadrantColours = [Red, Green, Blue, Yellow];

    public static byte[] Quadrants(int width, int height)
    {
        var pixels = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var colour = QuadrantColours[(y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1)];
                colour.CopyTo(pixels, (y * width + x) * 3);
            }
        }

        return pixels;
    }

    public static byte[] Save(byte[] pixels, int width, int height, int bands, string suffix, Func<Image, Image>? transform = null, Enums.BandFormat format = Enums.BandFormat.Uchar)
    {
        var bytesPerSample = format == Enums.BandFormat.Ushort ? 2 : 1;
        if ((long)width * height * bands * bytesPerSample != pixels.LongLength)
        {
            throw new ArgumentException($"{pixels.Length} bytes do not hold {width}x{height}x{bands} samples", nameof(pixels));
        }

        var image = Image.NewFromMemoryCopy<byte>(pixels, width, height, bands, format);
        try
        {
            if (transform is not null)
            {
                var next = transform(image);
                image.Dispose();
                image = next;
            }

            return image.WriteToBuffer(suffix);
        }
        finally
        {
            image.Dispose();
        }
    }

    public static byte[] QuadrantFile(string suffix, int width = 64, int height = 32) =>
        Save(Quadrants(width, height), width, height, 3, suffix);

    /// <summary>The quadrants with their sRGB colours converted to Display P3 numbers (libvips's built-in "p3"
    /// profile), that profile embedded. <paramref name="depth"/> 16 gives 16-bit samples.</summary>
    public static byte[] P3QuadrantFile(string suffix, int depth = 8) =>
        Save(
            Wide(Quadrants(64, 32), depth), 64, 32, 3, suffix,
            v => v.IccTransform("p3", inputProfile: "srgb", depth: depth),
            depth == 16 ? Enums.BandFormat.Ushort : Enums.BandFormat.Uchar);

    /// <summary>The 8-bit P3 numbers of <see cref="P3QuadrantFile"/>: what a decoder that ignores the profile shows.</summary>
    public static byte[] P3Numbers(byte[] srgb, int width, int height)
    {
        using var image = Image.NewFromMemoryCopy<byte>(srgb, width, height, 3, Enums.BandFormat.Uchar);
        using var p3 = image.IccTransform("p3", inputProfile: "srgb");
        return p3.WriteToMemory<byte>();
    }

    private static byte[] Wide(byte[] eight, int depth)
    {
        if (depth == 8)
        {
            return eight;
        }

        var sixteen = new byte[eight.Length * 2];
        for (var i = 0; i < eight.Length; i++)
        {
            sixteen[2 * i] = eight[i];
            sixteen[2 * i + 1] = eight[i];
        }

        return sixteen;
    }

    /// <summary>A JPEG whose stored pixels are the upright quadrants transformed so that applying EXIF
    /// orientation <paramref name="orientation"/> gives back the upright image of width x height.</summary>
    public static byte[] OrientedJpeg(int orientation, int width, int height)
    {
        var upright = Quadrants(width, height);
        var (storedWidth, storedHeight) = orientation >= 5 ? (height, width) : (width, height);
        var stored = new byte[upright.Length];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var (sx, sy) = orientation switch
                {
                    1 => (x, y),
                    2 => (width - 1 - x, y),
                    3 => (width - 1 - x, height - 1 - y),
                    4 => (x, height - 1 - y),
                    5 => (y, x),
                    6 => (y, width - 1 - x),
                    7 => (height - 1 - y, width - 1 - x),
                    8 => (height - 1 - y, x),
                    _ => throw new ArgumentOutOfRangeException(nameof(orientation)),
                };
                Array.Copy(upright, (y * width + x) * 3, stored, (sy * storedWidth + sx) * 3, 3);
            }
        }

        return Save(stored, storedWidth, storedHeight, 3, ".jpg[Q=95]", v => v.WithInt("orientation", orientation));
    }

    /// <summary>Inserts <paramref name="profile"/> as a JPEG APP2 ICC_PROFILE segment (no validation, unlike libvips's savers).</summary>
    public static byte[] WithIccSegment(byte[] jpeg, byte[] profile)
    {
        var segment = new byte[4 + 14 + profile.Length];
        (segment[0], segment[1]) = (0xFF, 0xE2);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), (ushort)(segment.Length - 2));
        "ICC_PROFILE\0"u8.CopyTo(segment.AsSpan(4));
        (segment[16], segment[17]) = (1, 1);
        profile.CopyTo(segment, 18);
        return [.. jpeg.AsSpan(0, 2), .. segment, .. jpeg.AsSpan(2)];
    }

    /// <summary>True when libvips finds a GPS field in the file's EXIF.</summary>
    public static bool HasExifGps(byte[] encoded)
    {
        using var header = Image.NewFromBuffer(encoded);
        return header.Contains("exif-ifd3-GPSLatitudeRef");
    }

    /// <summary>A 60000x60000 PNG in under 100 bytes: a valid IHDR, one tiny IDAT, IEND.</summary>
    public static byte[] PngBomb(int width = 60000, int height = 60000)
    {
        using var stream = new MemoryStream();
        stream.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;
        ihdr[9] = 2;
        WriteChunk(stream, "IHDR", ihdr);
        WriteChunk(stream, "IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        WriteChunk(stream, "IEND", []);
        return stream.ToArray();
    }

    /// <summary>A real small JPEG whose frame header is patched to claim width x height.</summary>
    public static byte[] JpegBomb(int width = 60000, int height = 60000)
    {
        var jpeg = QuadrantFile(".jpg[Q=80]", 16, 16);
        for (var i = 2; i < jpeg.Length - 9; i++)
        {
            if (jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC2)
            {
                BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(i + 5), (ushort)height);
                BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(i + 7), (ushort)width);
                return jpeg;
            }
        }

        throw new InvalidOperationException("no SOF marker in the generated JPEG");
    }

    private static void WriteChunk(Stream stream, string type, byte[] data)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, data.Length);
        stream.Write(length);
        var typeAndData = new byte[4 + data.Length];
        System.Text.Encoding.ASCII.GetBytes(type).CopyTo(typeAndData, 0);
        data.CopyTo(typeAndData, 4);
        stream.Write(typeAndData);
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(typeAndData));
        stream.Write(crc);
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
            }
        }

        return ~crc;
    }
}

/// <summary>Copies with one metadata field set, as the old interop's helpers did.</summary>
internal static class ImageFields
{
    public static Image WithInt(this Image image, string field, int value) => image.Mutate(m => m.Set(GValue.GIntType, field, value));

    public static Image WithString(this Image image, string field, string value) => image.Mutate(m => m.Set(GValue.GStrType, field, value));
}
