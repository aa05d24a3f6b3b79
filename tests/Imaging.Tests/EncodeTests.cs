using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Imaging.Tests;

public sealed class EncodeTests
{
    private static readonly VipsImageCodec Codec = new(new ImagingOptions());

    private static RgbImage Quadrants() => new(64, 32, ImageCorpus.Quadrants(64, 32));

    [Theory]
    [InlineData(OutputFormat.Jpeg, SourceImageFormat.Jpeg, 12)]
    [InlineData(OutputFormat.Png, SourceImageFormat.Png, 0)]
    [InlineData(OutputFormat.Webp, SourceImageFormat.Webp, 20)]
    public void Round_trips_every_output_format(OutputFormat format, SourceImageFormat decodedAs, int tolerance)
    {
        var bytes = Codec.Encode(Quadrants(), new EncodeOptions { Format = format, Quality = 95 });

        var decoded = Codec.Decode(bytes);

        decoded.Source!.Format.ShouldBe(decodedAs);
        (decoded.Width, decoded.Height).ShouldBe((64, 32));
        decoded.ShouldShowQuadrants(tolerance);
    }

    [Fact]
    public void Jpeg_quality_changes_size()
    {
        var image = new RgbImage(128, 128, LimitTests.Noise(128, 128));

        var low = Codec.Encode(image, new EncodeOptions { Quality = 20 });
        var high = Codec.Encode(image, new EncodeOptions { Quality = 95 });

        low.Length.ShouldBeLessThan(high.Length);
    }

    [Fact]
    public void Progressive_jpeg_uses_a_progressive_frame()
    {
        var baseline = Codec.Encode(Quadrants(), new EncodeOptions { Progressive = false });
        var progressive = Codec.Encode(Quadrants(), new EncodeOptions { Progressive = true });

        HasMarker(baseline, 0xC2).ShouldBeFalse();
        HasMarker(progressive, 0xC2).ShouldBeTrue();
    }

    [Theory]
    [InlineData(OutputFormat.Jpeg)]
    [InlineData(OutputFormat.Png)]
    [InlineData(OutputFormat.Webp)]
    public void Strips_all_metadata_by_default_even_from_a_source_with_exif_and_icc(OutputFormat format)
    {
        var source = Codec.Decode(ImageCorpus.OrientedJpeg(6, 64, 32));
        source.Source!.OrientationApplied.ShouldBeTrue();

        var bytes = Codec.Encode(source, new EncodeOptions { Format = format });

        Contains(bytes, "Exif"u8).ShouldBeFalse();
        Contains(bytes, "ICC_PROFILE"u8).ShouldBeFalse();
        Contains(bytes, "iCCP"u8).ShouldBeFalse();
        var again = Codec.Decode(bytes);
        again.Source!.HadIccProfile.ShouldBeFalse();
        again.Source.Orientation.ShouldBe(1);
    }

    [Fact]
    public void Gps_position_in_the_source_never_reaches_the_output()
    {
        var withGps = ImageCorpus.Save(
            ImageCorpus.Quadrants(64, 32), 64, 32, 3, ".jpg[Q=90]",
            v =>
            {
                using var gps = v.WithString("exif-ifd3-GPSLatitudeRef", "N");
                return gps.WithString("exif-ifd0-Artist", "MAMBAST-MARKER");
            });
        ImageCorpus.HasExifGps(withGps).ShouldBeTrue("the corpus image must carry GPS for this test to mean anything");
        Contains(withGps, "MAMBAST-MARKER"u8).ShouldBeTrue();

        var decoded = Codec.Decode(withGps);
        var stripped = Codec.Encode(decoded);
        var kept = Codec.Encode(decoded, new EncodeOptions { KeepMetadata = true });

        ImageCorpus.HasExifGps(stripped).ShouldBeFalse();
        ImageCorpus.HasExifGps(kept).ShouldBeFalse();
        Contains(stripped, "MAMBAST-MARKER"u8).ShouldBeFalse();
        Contains(kept, "MAMBAST-MARKER"u8).ShouldBeFalse();
    }

    [Fact]
    public void Keep_metadata_embeds_only_an_srgb_profile()
    {
        var source = Codec.Decode(ImageCorpus.OrientedJpeg(6, 64, 32));

        var bytes = Codec.Encode(source, new EncodeOptions { KeepMetadata = true });

        Codec.Decode(bytes).Source!.HadIccProfile.ShouldBeTrue();
        Contains(bytes, "Exif"u8).ShouldBeFalse();
    }

    [Theory]
    [InlineData(OutputFormat.Jpeg, 14)]
    [InlineData(OutputFormat.Png, 3)]
    [InlineData(OutputFormat.Webp, 20)]
    public void Keep_metadata_labels_pixels_from_a_p3_source_as_srgb(OutputFormat format, int tolerance)
    {
        var source = Codec.Decode(ImageCorpus.P3QuadrantFile(".png"));

        var bytes = Codec.Encode(source, new EncodeOptions { Format = format, Quality = 95, KeepMetadata = true });

        var again = Codec.Decode(bytes);
        again.Source!.HadIccProfile.ShouldBeTrue();
        again.ShouldShowQuadrants(tolerance);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(101)]
    public void Quality_out_of_range_is_refused(int quality)
    {
        Should.Throw<ArgumentOutOfRangeException>(() => Codec.Encode(Quadrants(), new EncodeOptions { Quality = quality }));
    }

    [Fact]
    public void Resize_produces_the_exact_size_and_keeps_the_picture()
    {
        var down = Codec.Resize(Quadrants(), 32, 16);
        var up = Codec.Resize(Quadrants(), 100, 90);

        (down.Width, down.Height, down.Pixels.Length).ShouldBe((32, 16, 32 * 16 * 3));
        down.ShouldShowQuadrants(tolerance: 2);
        (up.Width, up.Height).ShouldBe((100, 90));
        up.ShouldShowQuadrants(tolerance: 2);
    }

    [Fact]
    public void Resize_rejects_bad_sizes()
    {
        Should.Throw<ArgumentOutOfRangeException>(() => Codec.Resize(Quadrants(), 0, 10));
        Should.Throw<ImageException>(() => new VipsImageCodec(new ImagingOptions { MaxPixels = 100 }).Resize(Quadrants(), 20, 20))
            .Kind.ShouldBe(ImageErrorKind.TooManyPixels);
    }

    [Fact]
    public void RgbImage_rejects_a_buffer_of_the_wrong_length()
    {
        Should.Throw<ArgumentException>(() => new RgbImage(10, 10, new byte[299]));
    }

    private static bool HasMarker(byte[] jpeg, byte marker)
    {
        for (var i = 0; i < jpeg.Length - 1; i++)
        {
            if (jpeg[i] == 0xFF && jpeg[i + 1] == marker)
            {
                return true;
            }
        }

        return false;
    }

    private static bool Contains(byte[] data, ReadOnlySpan<byte> needle) => data.AsSpan().IndexOf(needle) >= 0;
}
