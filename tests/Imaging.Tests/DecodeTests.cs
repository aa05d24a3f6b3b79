using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Imaging.Tests;

public sealed class DecodeTests
{
    private static readonly VipsImageCodec Codec = new(new ImagingOptions());

    public static TheoryData<string, SourceImageFormat, int> Formats => new()
    {
        { ".jpg[Q=95]", SourceImageFormat.Jpeg, 12 },
        { ".png", SourceImageFormat.Png, 0 },
        { ".webp[Q=95]", SourceImageFormat.Webp, 20 },
        { ".webp[lossless=true]", SourceImageFormat.Webp, 0 },
        { ".tif", SourceImageFormat.Tiff, 0 },
        { ".avif[Q=90]", SourceImageFormat.Avif, 30 },
        { ".gif", SourceImageFormat.Gif, 12 },
    };

    [Theory]
    [MemberData(nameof(Formats))]
    public void Decodes_every_format_to_rgb8_with_the_right_pixels(string suffix, SourceImageFormat format, int tolerance)
    {
        var bytes = ImageCorpus.QuadrantFile(suffix);

        var image = Codec.Decode(bytes);

        image.Width.ShouldBe(64);
        image.Height.ShouldBe(32);
        image.Pixels.Length.ShouldBe(64 * 32 * 3);
        image.Source!.Format.ShouldBe(format);
        image.Source.OriginalWidth.ShouldBe(64);
        image.ShouldShowQuadrants(tolerance);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void Applies_exif_orientation_so_pixels_land_upright(int orientation)
    {
        var bytes = ImageCorpus.OrientedJpeg(orientation, 64, 32);

        var image = Codec.Decode(bytes);

        image.Source!.Orientation.ShouldBe(orientation);
        image.Source.OrientationApplied.ShouldBe(orientation != 1);
        image.Source.OriginalWidth.ShouldBe(orientation >= 5 ? 32 : 64);
        image.Width.ShouldBe(64);
        image.Height.ShouldBe(32);
        image.ShouldShowQuadrants(tolerance: 12);
    }

    [Fact]
    public void Shrinks_on_load_to_the_longest_side_and_never_enlarges()
    {
        var bytes = ImageCorpus.QuadrantFile(".jpg[Q=95]", 400, 200);

        var small = Codec.Decode(bytes, new DecodeOptions { MaxSide = 100 });
        var same = Codec.Decode(bytes, new DecodeOptions { MaxSide = 1000 });

        (small.Width, small.Height).ShouldBe((100, 50));
        small.Source!.OriginalWidth.ShouldBe(400);
        small.ShouldShowQuadrants(tolerance: 12);
        (same.Width, same.Height).ShouldBe((400, 200));
    }

    [Fact]
    public void Shrinks_after_orientation_so_the_upright_longest_side_is_bounded()
    {
        var bytes = ImageCorpus.OrientedJpeg(6, 128, 64);

        var image = Codec.Decode(bytes, new DecodeOptions { MaxSide = 32 });

        (image.Width, image.Height).ShouldBe((32, 16));
        image.ShouldShowQuadrants(tolerance: 16);
    }

    [Fact]
    public void Converts_cmyk_jpeg_to_srgb()
    {
        var bytes = ImageCorpus.Save(ImageCorpus.Quadrants(64, 32), 64, 32, 3, ".jpg[Q=95]", v => v.Colourspace(NetVips.Enums.Interpretation.Cmyk));

        var image = Codec.Decode(bytes);

        image.Source!.Bands.ShouldBe(4);
        image.Source.HadAlpha.ShouldBeFalse();
        image.ShouldBeColour(16, 8, ImageCorpus.Red, 45);
        image.ShouldBeColour(48, 24, ImageCorpus.Yellow, 45);

        // Saturated green and blue lie outside the CMYK gamut: they come back duller but keep their hue (not inverted).
        var green = image.Pixel(48, 8).ToArray();
        green[1].ShouldBeGreaterThan((byte)(green[0] + 40));
        green[1].ShouldBeGreaterThan((byte)(green[2] + 40));
        var blue = image.Pixel(16, 24).ToArray();
        blue[2].ShouldBeGreaterThan((byte)(blue[0] + 40));
        blue[2].ShouldBeGreaterThan((byte)(blue[1] + 40));
    }

    [Theory]
    [InlineData(".png", 8, 3)]
    [InlineData(".png", 16, 3)]
    [InlineData(".jpg[Q=95]", 8, 14)]
    [InlineData(".webp[lossless=true]", 8, 3)]
    public void Converts_display_p3_to_srgb_with_the_embedded_profile(string suffix, int depth, int tolerance)
    {
        var srgb = ImageCorpus.Quadrants(64, 32);
        var p3 = new RgbImage(64, 32, ImageCorpus.P3Numbers(srgb, 64, 32));
        Should.Throw<ShouldAssertException>(() => p3.ShouldShowQuadrants(15), "the P3 numbers must differ from sRGB for this test to mean anything");

        var image = Codec.Decode(ImageCorpus.P3QuadrantFile(suffix, depth));

        image.Source!.HadIccProfile.ShouldBeTrue();
        image.Source.BitsPerSample.ShouldBe(depth);
        image.ShouldShowQuadrants(tolerance);
    }

    [Fact]
    public void Ignores_a_corrupt_embedded_profile()
    {
        var bytes = ImageCorpus.WithIccSegment(ImageCorpus.QuadrantFile(".jpg[Q=95]"), new byte[200]);

        var image = Codec.Decode(bytes);

        image.Source!.HadIccProfile.ShouldBeTrue();
        image.ShouldShowQuadrants(tolerance: 12);
    }

    [Fact]
    public void Converts_16_bit_png_to_8_bit()
    {
        var eight = ImageCorpus.Quadrants(64, 32);
        var sixteen = new byte[eight.Length * 2];
        for (var i = 0; i < eight.Length; i++)
        {
            sixteen[2 * i] = eight[i];
            sixteen[2 * i + 1] = eight[i];
        }

        var bytes = ImageCorpus.Save(sixteen, 64, 32, 3, ".png", format: NetVips.Enums.BandFormat.Ushort);

        var image = Codec.Decode(bytes);

        image.Source!.BitsPerSample.ShouldBe(16);
        image.ShouldShowQuadrants(tolerance: 1);
    }

    [Fact]
    public void Expands_greyscale_to_equal_rgb()
    {
        var grey = new byte[64 * 32];
        for (var i = 0; i < grey.Length; i++)
        {
            grey[i] = (byte)(i % 64 * 4);
        }

        var image = Codec.Decode(ImageCorpus.Save(grey, 64, 32, 1, ".png"));

        image.Source!.Bands.ShouldBe(1);
        image.ShouldBeColour(10, 5, [40, 40, 40], 1);
        image.ShouldBeColour(60, 20, [240, 240, 240], 1);
    }

    [Fact]
    public void Flattens_alpha_onto_white()
    {
        var rgba = new byte[64 * 32 * 4];
        for (var y = 0; y < 32; y++)
        {
            for (var x = 0; x < 64; x++)
            {
                var o = (y * 64 + x) * 4;
                (rgba[o], rgba[o + 1], rgba[o + 2], rgba[o + 3]) = (200, 0, 0, x < 32 ? (byte)0 : (byte)255);
            }
        }

        var image = Codec.Decode(ImageCorpus.Save(rgba, 64, 32, 4, ".png"));

        image.Source!.HadAlpha.ShouldBeTrue();
        image.ShouldBeColour(10, 10, [255, 255, 255], 0);
        image.ShouldBeColour(50, 10, [200, 0, 0], 0);
    }

    [Fact]
    public void Takes_the_first_frame_of_an_animated_gif()
    {
        var frames = new byte[32 * 64 * 3];
        for (var i = 0; i < frames.Length / 3; i++)
        {
            var colour = i < 32 * 32 ? ImageCorpus.Red : ImageCorpus.Blue;
            colour.CopyTo(frames, i * 3);
        }

        var bytes = ImageCorpus.Save(frames, 32, 64, 3, ".gif", v => v.WithInt("page-height", 32));

        var image = Codec.Decode(bytes);

        (image.Width, image.Height).ShouldBe((32, 32));
        image.ShouldBeColour(16, 16, ImageCorpus.Red, 12);
        image.ShouldBeColour(16, 31, ImageCorpus.Red, 12);
    }

    [Fact]
    public void Decodes_by_content_whatever_the_file_is_called()
    {
        var path = Path.Combine(Path.GetTempPath(), $"imaging-{Guid.NewGuid():N}.jpg");
        File.WriteAllBytes(path, ImageCorpus.QuadrantFile(".png"));
        try
        {
            using var stream = File.OpenRead(path);

            var image = Codec.Decode(stream);

            image.Source!.Format.ShouldBe(SourceImageFormat.Png);
            image.ShouldShowQuadrants(tolerance: 0);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Reports_embedded_icc_profile()
    {
        var plain = ImageCorpus.QuadrantFile(".jpg[Q=90,strip=true]");
        var tagged = Codec.Encode(Codec.Decode(plain), new EncodeOptions { KeepMetadata = true });

        Codec.Decode(plain).Source!.HadIccProfile.ShouldBeFalse();
        Codec.Decode(tagged).Source!.HadIccProfile.ShouldBeTrue();
    }

    [Fact]
    public void Maps_error_kinds_to_job_error_codes()
    {
        new ImageException(ImageErrorKind.Corrupt, "x").ErrorCode.ShouldBe(StylizationErrorCode.InvalidImage);
        new ImageException(ImageErrorKind.UnsupportedFormat, "x").ErrorCode.ShouldBe(StylizationErrorCode.InvalidImage);
        new ImageException(ImageErrorKind.Empty, "x").ErrorCode.ShouldBe(StylizationErrorCode.InvalidImage);
        new ImageException(ImageErrorKind.TooManyBytes, "x").ErrorCode.ShouldBe(StylizationErrorCode.ImageTooLarge);
        new ImageException(ImageErrorKind.TooManyPixels, "x").ErrorCode.ShouldBe(StylizationErrorCode.ImageTooLarge);
        new ImageException(ImageErrorKind.Timeout, "x").ErrorCode.ShouldBe(StylizationErrorCode.Timeout);
    }
}
