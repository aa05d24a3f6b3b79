using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using System.Runtime.InteropServices;
using MambaSt.Batch.Contracts;
using Microsoft.Extensions.Options;
using NetVips;

namespace MambaSt.Batch.Imaging;

/// <summary>The libvips-backed <see cref="IImageCodec"/>, through NetVips. Thread-safe; create one per process
/// (libvips settings such as concurrency are process-wide, the last constructed codec's settings win).</summary>
public sealed class VipsImageCodec : IImageCodec
{
    // A truncated file is an error, not a half-grey image. Given as the loader's option string: with 8.18.7,
    // vips_thumbnail_buffer's own fail_on argument let truncated JPEG and PNG through (LimitTests).
    private const string LoadOptions = "fail_on=truncated";
    private const int MaxCoordinate = 10_000_000;

    private readonly ImagingOptions options;

    public VipsImageCodec(IOptions<ImagingOptions> options)
        : this(options.Value)
    {
    }

    public VipsImageCodec(ImagingOptions options)
    {
        Validator.ValidateObject(options, new ValidationContext(options), validateAllProperties: true);
        this.options = options;
        VipsLibrary.EnsureInitialized(options.Concurrency);
    }

    /// <summary>The libvips in use, e.g. "8.18.7 (/app/runtimes/linux-x64/native/libvips.so.42)".</summary>
    public static string LibraryDescription => $"{VipsLibrary.Version} ({VipsLibrary.LoadedFrom})";

    public RgbImage Decode(ReadOnlyMemory<byte> data, DecodeOptions? decodeOptions = null)
    {
        decodeOptions ??= DecodeOptions.Default;
        if (decodeOptions.MaxSide is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(decodeOptions), decodeOptions.MaxSide, "MaxSide must be at least 1");
        }

        var clock = Stopwatch.StartNew();
        if (data.IsEmpty)
        {
            throw new ImageException(ImageErrorKind.Empty, "Image is empty (0 bytes)");
        }

        if (data.Length > options.MaxInputBytes)
        {
            throw TooManyBytes(data.Length);
        }

        var bytes = MemoryMarshal.TryGetArray(data, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : data.ToArray();
        var format = DetectFormat(bytes);
        var info = ReadHeader(bytes, format);

        var side = Math.Min(decodeOptions.MaxSide ?? Math.Max(info.OriginalWidth, info.OriginalHeight), MaxCoordinate);
        Image image;
        try
        {
            // Lazy: no_rotate keeps vips_thumbnail from decoding the whole image to memory to rotate it, before the
            // deadline is armed (see Upright). With output_profile, an embedded ICC profile drives an lcms transform.
            image = Image.ThumbnailBuffer(
                bytes, side, optionString: LoadOptions, height: side, size: Enums.Size.Down, noRotate: true,
                outputProfile: info.HadIccProfile ? "srgb" : null);
            image = ToRgb8(image);
        }
        catch (VipsException e)
        {
            throw Corrupt(format, e);
        }

        using (image)
        {
            var remaining = options.DecodeTimeout - clock.Elapsed;
            if (remaining <= TimeSpan.Zero)
            {
                throw DecodeTimeout();
            }

            var pixels = ComputeWithDeadline(image, remaining, format);
            return Upright(image.Width, image.Height, pixels, info);
        }
    }

    public RgbImage Decode(Stream data, DecodeOptions? decodeOptions = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.CanSeek && data.Length - data.Position > options.MaxInputBytes)
        {
            throw TooManyBytes(data.Length - data.Position);
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = data.Read(chunk)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > options.MaxInputBytes)
            {
                throw TooManyBytes(buffer.Length);
            }
        }

        return Decode(buffer.ToArray(), decodeOptions);
    }

    public byte[] Encode(RgbImage image, EncodeOptions? encodeOptions = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        encodeOptions ??= new EncodeOptions();
        if (encodeOptions.Quality is < 1 or > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(encodeOptions), encodeOptions.Quality, "Quality must be 1-100");
        }

        var metadata = encodeOptions.KeepMetadata ? "keep=icc,profile=srgb" : "keep=none";
        var interlace = encodeOptions.Progressive ? "true" : "false";
        var suffix = encodeOptions.Format switch
        {
            OutputFormat.Jpeg => $".jpg[Q={encodeOptions.Quality},interlace={interlace},optimize_coding=true,{metadata}]",
            OutputFormat.Png => $".png[compression=6,interlace={interlace},{metadata}]",
            OutputFormat.Webp => $".webp[Q={encodeOptions.Quality},{metadata}]",
            _ => throw new ArgumentOutOfRangeException(nameof(encodeOptions), encodeOptions.Format, "Unknown output format"),
        };

        try
        {
            using var vips = FromPixels(image);
            return vips.WriteToBuffer(suffix);
        }
        catch (VipsException e)
        {
            throw new InvalidOperationException($"Encoding {image.Width}x{image.Height} as {encodeOptions.Format} failed: {VipsDiagnosis.Of(e)}", e);
        }
    }

    public RgbImage Resize(RgbImage image, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if ((long)width * height > options.MaxPixels)
        {
            throw new ImageException(
                ImageErrorKind.TooManyPixels,
                $"Resize target {width}x{height} = {(long)width * height} pixels is over the MaxPixels limit of {options.MaxPixels}");
        }

        try
        {
            var vips = FromPixels(image);
            vips = Then(vips, v => v.ThumbnailImage(width, height: height, size: Enums.Size.Force));
            using (vips = ToRgb8(vips))
            {
                return new RgbImage(vips.Width, vips.Height, vips.WriteToMemory<byte>());
            }
        }
        catch (VipsException e)
        {
            throw new InvalidOperationException($"Resizing {image.Width}x{image.Height} to {width}x{height} failed: {VipsDiagnosis.Of(e)}", e);
        }
    }

    /// <summary>Copies the pixels: the image must not see later changes to <see cref="RgbImage.Pixels"/>.</summary>
    private static Image FromPixels(RgbImage image) =>
        Image.NewFromMemoryCopy<byte>(image.Pixels, image.Width, image.Height, 3, Enums.BandFormat.Uchar);

    private static SourceImageFormat DetectFormat(byte[] data)
    {
        var loader = Image.FindLoadBuffer(data);
        SourceImageFormat? format = loader switch
        {
            "VipsForeignLoadJpegBuffer" => SourceImageFormat.Jpeg,
            "VipsForeignLoadPngBuffer" => SourceImageFormat.Png,
            "VipsForeignLoadWebpBuffer" => SourceImageFormat.Webp,
            "VipsForeignLoadTiffBuffer" => SourceImageFormat.Tiff,
            "VipsForeignLoadHeifBuffer" => IsAvifBrand(data) ? SourceImageFormat.Avif : SourceImageFormat.Heif,
            "VipsForeignLoadGifBuffer" or "VipsForeignLoadNsgifBuffer" => SourceImageFormat.Gif,
            _ => null,
        };

        if (format is null)
        {
            // Names only what libvips recognised and the size: never bytes of the input, which may be anything.
            var what = loader is null ? "no decoder recognises the content" : $"content is {loader}, which is not accepted";
            throw new ImageException(
                ImageErrorKind.UnsupportedFormat,
                $"Unsupported image: {what} ({data.Length} bytes; accepted: JPEG, PNG, WebP, TIFF, HEIF/AVIF, GIF)");
        }

        return format.Value;
    }

    private static bool IsAvifBrand(ReadOnlySpan<byte> data) =>
        data.Length >= 12 && (data[8..12].SequenceEqual("avif"u8) || data[8..12].SequenceEqual("avis"u8));

    private ImageDecodeInfo ReadHeader(byte[] data, SourceImageFormat format)
    {
        try
        {
            // Lazy: only the header is parsed until pixels are pulled.
            using var header = Image.NewFromBuffer(data, LoadOptions);
            var width = header.Width;
            var height = header.Height;
            var pixels = (long)width * height;
            if (pixels > options.MaxPixels)
            {
                throw new ImageException(
                    ImageErrorKind.TooManyPixels,
                    $"Image header says {width}x{height} = {pixels} pixels, over the MaxPixels limit of {options.MaxPixels}");
            }

            return new ImageDecodeInfo
            {
                Format = format,
                OriginalWidth = width,
                OriginalHeight = height,
                Orientation = header.Contains("orientation") && header.Get("orientation") is int o and >= 1 and <= 8 ? o : 1,
                HadAlpha = header.HasAlpha(),
                HadIccProfile = header.Contains("icc-profile-data"),
                Bands = header.Bands,
                BitsPerSample = header.Format switch
                {
                    Enums.BandFormat.Uchar or Enums.BandFormat.Char => 8,
                    Enums.BandFormat.Ushort or Enums.BandFormat.Short => 16,
                    Enums.BandFormat.Uint or Enums.BandFormat.Int or Enums.BandFormat.Float => 32,
                    _ => 64,
                },
            };
        }
        catch (VipsException e)
        {
            throw Corrupt(format, e);
        }
    }

    /// <summary>Converts any colourspace, depth and band layout to 8-bit sRGB with 3 bands; alpha is
    /// composited onto white. Disposes <paramref name="image"/> (the result keeps what it needs).</summary>
    private static Image ToRgb8(Image image)
    {
        if (image.Interpretation != Enums.Interpretation.Srgb)
        {
            image = Then(image, v => v.Colourspace(Enums.Interpretation.Srgb));
        }

        if (image.HasAlpha())
        {
            image = Then(image, v => v.Flatten(background: [255, 255, 255]));
        }

        if (image.Format != Enums.BandFormat.Uchar)
        {
            image = Then(image, v => v.Cast(Enums.BandFormat.Uchar));
        }

        if (image.Bands > 3)
        {
            image = Then(image, v => v.ExtractBand(0, n: 3));
        }

        return image;
    }

    /// <summary>Applies the EXIF orientation to pixels already decoded under the deadline. Left to
    /// vips_thumbnail, the rotation would decode the whole image to memory before the deadline is armed.</summary>
    private static RgbImage Upright(int width, int height, byte[] pixels, ImageDecodeInfo info)
    {
        if (!info.OrientationApplied)
        {
            return new RgbImage(width, height, pixels) { Source = info };
        }

        try
        {
            using var stored = Image.NewFromMemory(pixels, width, height, 3, Enums.BandFormat.Uchar);
            using var tagged = stored.Mutate(m => m.Set(GValue.GIntType, "orientation", info.Orientation));
            using var upright = tagged.Autorot();
            return new RgbImage(upright.Width, upright.Height, upright.WriteToMemory<byte>()) { Source = info };
        }
        catch (VipsException e)
        {
            throw new InvalidOperationException($"Applying EXIF orientation {info.Orientation} to {width}x{height} failed: {VipsDiagnosis.Of(e)}", e);
        }
    }

    private static Image Then(Image image, Func<Image, Image> step)
    {
        using (image)
        {
            return step(image);
        }
    }

    private byte[] ComputeWithDeadline(Image image, TimeSpan remaining, SourceImageFormat format)
    {
        var killed = 0;
        using var timer = new Timer(
            _ =>
            {
                Volatile.Write(ref killed, 1);
                Kill(image);
            },
            null,
            remaining,
            Timeout.InfiniteTimeSpan);
        try
        {
            var pixels = image.WriteToMemory<byte>();

            // libvips before 8.15 may not honour the kill flag in every sink: the deadline still holds.
            return Volatile.Read(ref killed) == 1 ? throw DecodeTimeout() : pixels;
        }
        catch (VipsException e)
        {
            if (Volatile.Read(ref killed) == 1)
            {
                throw DecodeTimeout();
            }

            throw Corrupt(format, e);
        }
    }

    /// <summary>Asks a running evaluation of the image to stop; it then fails at its next tile. The timer may fire
    /// after the decode has finished and disposed the image: that is a no-op, never an exception on the timer thread.</summary>
    private static void Kill(Image image)
    {
        try
        {
            image.SetKill(true);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private ImageException TooManyBytes(long length) =>
        new(ImageErrorKind.TooManyBytes, $"Image is {length} bytes, over the MaxInputBytes limit of {options.MaxInputBytes}");

    private ImageException DecodeTimeout() =>
        new(ImageErrorKind.Timeout, $"Decoding took longer than the DecodeTimeout limit of {options.DecodeTimeout.TotalMilliseconds:0} ms");

    /// <summary>No inner exception: NetVips's message is libvips's raw error text, which a log of the whole
    /// exception would print, and which may quote what the decoder read from the file.</summary>
    private static ImageException Corrupt(SourceImageFormat format, VipsException e) =>
        new(ImageErrorKind.Corrupt, $"{format} image is corrupt or truncated: {VipsDiagnosis.Of(e)}");
}
