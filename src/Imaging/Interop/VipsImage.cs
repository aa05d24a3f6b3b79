using System.Buffers;
using System.Runtime.InteropServices;

namespace MambaSt.Batch.Imaging.Interop;

/// <summary>A libvips operation failed; the message is libvips's error text.</summary>
internal sealed class VipsOperationException(string operation, string detail)
    : Exception($"{operation} failed: {detail}")
{
    public string Detail { get; } = detail;
}

/// <summary>Encoded bytes pinned for as long as libvips may read them: images loaded from a
/// <see cref="VipsSource"/> read its memory lazily, so dispose every such image before the source.
/// Not thread-safe; use one per decode.</summary>
internal sealed class VipsSource : IDisposable
{
    private MemoryHandle pin;
    private readonly nuint length;

    public unsafe VipsSource(ReadOnlyMemory<byte> data)
    {
        pin = data.Pin();
        length = (nuint)data.Length;
    }

    private unsafe IntPtr Pointer => (IntPtr)pin.Pointer;

    /// <summary>The libvips loader class that recognises the bytes (e.g. VipsForeignLoadJpegBuffer), or null.</summary>
    public string? FindLoader()
    {
        var name = VipsNative.FindLoadBuffer(Pointer, length);
        if (name == IntPtr.Zero)
        {
            VipsNative.ErrorClear();
            return null;
        }

        return Marshal.PtrToStringUTF8(name);
    }

    /// <summary>Opens the image lazily: only the header is parsed until pixels are pulled.</summary>
    public VipsImage OpenHeader(string loadOptions)
    {
        var handle = VipsNative.NewFromBuffer(Pointer, length, loadOptions, IntPtr.Zero);
        return VipsImage.Own(handle, "vips_image_new_from_buffer");
    }

    /// <summary>Loads with shrink-on-load to fit <paramref name="width"/> x <paramref name="height"/>
    /// (never upscaling); lazy. The EXIF orientation is not applied (libvips would decode the whole image
    /// to memory inside this call to do it; see <see cref="VipsImage.Autorot"/>). With <paramref name="outputProfile"/> (e.g. "srgb"),
    /// an embedded ICC profile is used to transform the pixels to that profile; without one, or for an
    /// image that embeds none, the pixels are only converted to the sRGB or B_W processing space.</summary>
    public VipsImage Thumbnail(int width, int height, string loadOptions, string? outputProfile)
    {
        var rc = VipsNative.ThumbnailBuffer(
            Pointer, length, out var handle, width, "height", height, "size", VipsNative.SizeDown, "no_rotate", 1,
            "option_string", loadOptions, outputProfile is null ? null : VipsLibrary.ThumbnailOutputProfileOption, outputProfile, IntPtr.Zero);
        return VipsImage.Own(rc == 0 ? handle : Fail(handle), "vips_thumbnail_buffer");
    }

    private static VipsImageHandle Fail(VipsImageHandle handle)
    {
        handle.Dispose();
        return new VipsImageHandle();
    }

    public void Dispose() => pin.Dispose();
}

/// <summary>One libvips image; owns one reference through <see cref="VipsImageHandle"/>. Operations
/// return new images and leave this one unchanged. Reading properties and building pipelines is safe
/// from any thread; <see cref="Kill"/> is meant to be called from another thread while pixels are computed.</summary>
internal sealed class VipsImage : IDisposable
{
    public const int FormatUchar = 0;
    public const int FormatUshort = 2;
    public const int InterpretationBw = 1;
    public const int InterpretationCmyk = 15;
    public const int InterpretationSrgb = 22;
    public const int InterpretationRgb16 = 25;
    public const int InterpretationGrey16 = 26;

    private readonly VipsImageHandle handle;

    private VipsImage(VipsImageHandle handle) => this.handle = handle;

    internal static VipsImage Own(VipsImageHandle handle, string operation)
    {
        if (handle.IsInvalid)
        {
            handle.Dispose();
            throw new VipsOperationException(operation, VipsErrors.Take());
        }

        return new VipsImage(handle);
    }

    private static VipsImage Result(int rc, VipsImageHandle output, string operation)
    {
        if (rc != 0)
        {
            output.Dispose();
            throw new VipsOperationException(operation, VipsErrors.Take());
        }

        return Own(output, operation);
    }

    /// <summary>Copies pixels (interleaved, row-major, no padding) into a new libvips image.</summary>
    public static VipsImage FromPixels(byte[] pixels, int width, int height, int bands, int format)
    {
        var bytesPerSample = format == FormatUshort ? 2 : 1;
        if ((long)width * height * bands * bytesPerSample != pixels.LongLength)
        {
            throw new ArgumentException($"{pixels.Length} bytes do not hold {width}x{height}x{bands} samples", nameof(pixels));
        }

        var handle = VipsNative.NewFromMemoryCopy(pixels, (nuint)pixels.Length, width, height, bands, format);
        return Own(handle, "vips_image_new_from_memory_copy");
    }

    public int Width => VipsNative.GetWidth(handle);

    public int Height => VipsNative.GetHeight(handle);

    public int Bands => VipsNative.GetBands(handle);

    public int Format => VipsNative.GetFormat(handle);

    public int Interpretation => VipsNative.GetInterpretation(handle);

    public bool HasAlpha => VipsNative.HasAlpha(handle) != 0;

    public bool Has(string field) => VipsNative.GetTypeOf(handle, field) != 0;

    public int? GetInt(string field)
    {
        if (!Has(field))
        {
            return null;
        }

        if (VipsNative.GetInt(handle, field, out var value) != 0)
        {
            VipsNative.ErrorClear();
            return null;
        }

        return value;
    }

    /// <summary>Returns a copy with an integer metadata field set (e.g. "orientation", "page-height").</summary>
    public VipsImage WithInt(string field, int value)
    {
        var rc = VipsNative.Copy(handle, out var copy, IntPtr.Zero);
        var result = Result(rc, copy, "vips_copy");
        VipsNative.SetInt(result.handle, field, value);
        return result;
    }

    /// <summary>Returns a copy with a string metadata field set (e.g. "exif-ifd3-GPSLatitudeRef").</summary>
    public VipsImage WithString(string field, string value)
    {
        var rc = VipsNative.Copy(handle, out var copy, IntPtr.Zero);
        var result = Result(rc, copy, "vips_copy");
        VipsNative.SetString(result.handle, field, value);
        return result;
    }

    public VipsImage Colourspace(int interpretation)
    {
        var rc = VipsNative.Colourspace(handle, out var output, interpretation, IntPtr.Zero);
        return Result(rc, output, "vips_colourspace");
    }

    /// <summary>Composites onto an opaque background of the given 8-bit grey level and drops alpha.</summary>
    public VipsImage Flatten(int grey)
    {
        var background = VipsNative.ArrayDoubleNew([grey, grey, grey], 3);
        try
        {
            var rc = VipsNative.Flatten(handle, out var output, "background", background, IntPtr.Zero);
            return Result(rc, output, "vips_flatten");
        }
        finally
        {
            VipsNative.AreaUnref(background);
        }
    }

    /// <summary>Turns the image upright according to its "orientation" field (EXIF 1-8). Rotations need
    /// random access: use it on an image already in memory.</summary>
    public VipsImage Autorot()
    {
        var rc = VipsNative.Autorot(handle, out var output, IntPtr.Zero);
        return Result(rc, output, "vips_autorot");
    }

    /// <summary>Transforms the pixels from <paramref name="inputProfile"/> to <paramref name="outputProfile"/>
    /// (built-in names such as "srgb", "p3", "cmyk", or file paths) and attaches the output profile.</summary>
    public VipsImage IccTransform(string outputProfile, string inputProfile, int depth = 8)
    {
        var rc = VipsNative.IccTransform(handle, out var output, outputProfile, "input_profile", inputProfile, "depth", depth, IntPtr.Zero);
        return Result(rc, output, "vips_icc_transform");
    }

    public VipsImage Cast(int format)
    {
        var rc = VipsNative.Cast(handle, out var output, format, IntPtr.Zero);
        return Result(rc, output, "vips_cast");
    }

    public VipsImage ExtractBands(int first, int count)
    {
        var rc = VipsNative.ExtractBand(handle, out var output, first, "n", count, IntPtr.Zero);
        return Result(rc, output, "vips_extract_band");
    }

    /// <summary>Resamples to exactly <paramref name="width"/> x <paramref name="height"/> (lanczos3).</summary>
    public VipsImage ResizeExact(int width, int height)
    {
        var rc = VipsNative.ThumbnailImage(handle, out var output, width, "height", height, "size", VipsNative.SizeForce, IntPtr.Zero);
        return Result(rc, output, "vips_thumbnail_image");
    }

    /// <summary>Computes every pixel and copies them out; this is where lazy pipelines do their work.</summary>
    public byte[] ToPixels()
    {
        using var buffer = VipsNative.WriteToMemory(handle, out var size);
        if (buffer.IsInvalid)
        {
            throw new VipsOperationException("vips_image_write_to_memory", VipsErrors.Take());
        }

        return buffer.ToArray(size);
    }

    /// <summary>Encodes with a saver chosen by suffix and options, e.g. ".jpg[Q=90,strip=true]".</summary>
    public byte[] Save(string suffixWithOptions)
    {
        var rc = VipsNative.WriteToBuffer(handle, suffixWithOptions, out var buffer, out var size, IntPtr.Zero);
        using (buffer)
        {
            if (rc != 0 || buffer.IsInvalid)
            {
                throw new VipsOperationException("vips_image_write_to_buffer", VipsErrors.Take());
            }

            return buffer.ToArray(size);
        }
    }

    /// <summary>Asks a running evaluation of this image to stop; it then fails at its next tile.
    /// Thread-safe; a no-op once the image is disposed.</summary>
    public void Kill()
    {
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            VipsNative.SetKill(handle, 1);
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    public void Dispose() => handle.Dispose();
}
