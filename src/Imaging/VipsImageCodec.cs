using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using MambaSt.Batch.Contracts;
using MambaSt.Batch.Imaging.Interop;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Imaging;

/// <summary>The libvips-backed <see cref="IImageCodec"/>. Thread-safe; create one per process (libvips
/// settings such as concurrency are process-wide, the last constructed codec's settings win).</summary>
public sealed class VipsImageCodec : IImageCodec
{
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

    /// <summary>The libvips in use, e.g. "8.18.7 (/app/libvips-cpp.so.8.18.7)".</summary>
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

        using var source = new VipsSource(data);
        var format = DetectFormat(source, data.Span);
        var info = ReadHeader(source, format);

        var side = Math.Min(decodeOptions.MaxSide ?? Math.Max(info.OriginalWidth, info.OriginalHeight), MaxCoordinate);
        VipsImage image;
        try
        {
            image = source.Thumbnail(side, side, LoadOptions, info.HadIccProfile ? "srgb" : null);
            image = ToRgb8(image);
        }
        catch (VipsOperationException e)
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

        return Decode(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), decodeOptions);
    }

    public byte[] Encode(RgbImage image, EncodeOptions? encodeOptions = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        encodeOptions ??= new EncodeOptions();
        if (encodeOptions.Quality is < 1 or > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(encodeOptions), encodeOptions.Quality, "Quality must be 1-100");
        }

        var metadata = (encodeOptions.KeepMetadata, VipsLibrary.HasKeepOption) switch
        {
            (false, true) => "keep=none",
            (false, false) => "strip=true",
            (true, true) => "keep=icc,profile=srgb",
            (true, false) => "strip=false,profile=srgb",
        };
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
            using var vips = VipsImage.FromPixels(image.Pixels, image.Width, image.Height, 3, VipsImage.FormatUchar);
            return vips.Save(suffix);
        }
        catch (VipsOperationException e)
        {
            throw new InvalidOperationException($"Encoding {image.Width}x{image.Height} as {encodeOptions.Format} failed: {e.Detail}", e);
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
            var vips = VipsImage.FromPixels(image.Pixels, image.Width, image.Height, 3, VipsImage.FormatUchar);
            vips = Then(vips, v => v.ResizeExact(width, height));
            using (vips = ToRgb8(vips))
            {
                return new RgbImage(vips.Width, vips.Height, vips.ToPixels());
            }
        }
        catch (VipsOperationException e)
        {
            throw new InvalidOperationException($"Resizing {image.Width}x{image.Height} to {width}x{height} failed: {e.Detail}", e);
        }
    }

    private static SourceImageFormat DetectFormat(VipsSource source, ReadOnlySpan<byte> data)
    {
        var loader = source.FindLoader();
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
            var what = loader is null ? "no decoder recognises the content" : $"content is {loader}, which is not accepted";
            throw new ImageException(
                ImageErrorKind.UnsupportedFormat,
                $"Unsupported image: {what} (first bytes {Convert.ToHexString(data[..Math.Min(8, data.Length)])}; accepted: JPEG, PNG, WebP, TIFF, HEIF/AVIF, GIF)");
        }

        return format.Value;
    }

    private static bool IsAvifBrand(ReadOnlySpan<byte> data) =>
        data.Length >= 12 && (data[8..12].SequenceEqual("avif"u8) || data[8..12].SequenceEqual("avis"u8));

    private ImageDecodeInfo ReadHeader(VipsSource source, SourceImageFormat format)
    {
        try
        {
            using var header = source.OpenHeader(LoadOptions);
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
                Orientation = header.GetInt("orientation") is { } o and >= 1 and <= 8 ? o : 1,
                HadAlpha = header.HasAlpha,
                HadIccProfile = header.Has("icc-profile-data"),
                Bands = header.Bands,
                BitsPerSample = header.Format switch
                {
                    0 or 1 => 8,
                    2 or 3 => 16,
                    4 or 5 or 6 => 32,
                    _ => 64,
                },
            };
        }
        catch (VipsOperationException e)
        {
            throw Corrupt(format, e);
        }
    }

    /// <summary>Converts any colourspace, depth and band layout to 8-bit sRGB with 3 bands; alpha is
    /// composited onto white. Disposes <paramref name="image"/> (the result keeps what it needs).</summary>
    private static VipsImage ToRgb8(VipsImage image)
    {
        if (image.Interpretation != VipsImage.InterpretationSrgb)
        {
            image = Then(image, v => v.Colourspace(VipsImage.InterpretationSrgb));
        }

        if (image.HasAlpha)
        {
            image = Then(image, v => v.Flatten(255));
        }

        if (image.Format != VipsImage.FormatUchar)
        {
            image = Then(image, v => v.Cast(VipsImage.FormatUchar));
        }

        if (image.Bands > 3)
        {
            image = Then(image, v => v.ExtractBands(0, 3));
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
            using var stored = VipsImage.FromPixels(pixels, width, height, 3, VipsImage.FormatUchar);
            using var tagged = stored.WithInt("orientation", info.Orientation);
            using var upright = tagged.Autorot();
            return new RgbImage(upright.Width, upright.Height, upright.ToPixels()) { Source = info };
        }
        catch (VipsOperationException e)
        {
            throw new InvalidOperationException($"Applying EXIF orientation {info.Orientation} to {width}x{height} failed: {e.Detail}", e);
        }
    }

    private static VipsImage Then(VipsImage image, Func<VipsImage, VipsImage> step)
    {
        using (image)
        {
            return step(image);
        }
    }

    private byte[] ComputeWithDeadline(VipsImage image, TimeSpan remaining, SourceImageFormat format)
    {
        var killed = 0;
        using var timer = new Timer(
            _ =>
            {
                Volatile.Write(ref killed, 1);
                image.Kill();
            },
            null,
            remaining,
            Timeout.InfiniteTimeSpan);
        try
        {
            var pixels = image.ToPixels();

            // libvips before 8.15 may not honour the kill flag in every sink: the deadline still holds.
            return Volatile.Read(ref killed) == 1 ? throw DecodeTimeout() : pixels;
        }
        catch (VipsOperationException e)
        {
            if (Volatile.Read(ref killed) == 1)
            {
                throw DecodeTimeout();
            }

            throw Corrupt(format, e);
        }
    }

    private ImageException TooManyBytes(long length) =>
        new(ImageErrorKind.TooManyBytes, $"Image is {length} bytes, over the MaxInputBytes limit of {options.MaxInputBytes}");

    private ImageException DecodeTimeout() =>
        new(ImageErrorKind.Timeout, $"Decoding took longer than the DecodeTimeout limit of {options.DecodeTimeout.TotalMilliseconds:0} ms");

    private static ImageException Corrupt(SourceImageFormat format, VipsOperationException e) =>
        new(ImageErrorKind.Corrupt, $"{format} image is corrupt or truncated: {e.Detail}", e);
}
