namespace MambaSt.Batch.Imaging.Tests;

/// <summary>Compares wall-clock times, so these run alone, after the parallel tests.</summary>
[Collection(nameof(DeadlineTests))]
[CollectionDefinition(nameof(DeadlineTests), DisableParallelization = true)]
public sealed class DeadlineTests
{
    [Fact]
    public void Slow_decode_stops_at_the_deadline_with_timeout()
    {
        const int width = 6000, height = 4000;
        var big = ImageCorpus.Save(Pattern(width, height), width, height, 3, ".png[compression=1]");
        var full = System.Diagnostics.Stopwatch.StartNew();
        new VipsImageCodec(new ImagingOptions()).Decode(big).Width.ShouldBe(width);
        full.Stop();
        var codec = new VipsImageCodec(new ImagingOptions { DecodeTimeout = TimeSpan.FromMilliseconds(40) });

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var error = Should.Throw<ImageException>(() => codec.Decode(big));
        clock.Stop();

        error.Kind.ShouldBe(ImageErrorKind.Timeout);
        error.ErrorCode.ShouldBe(Contracts.StylizationErrorCode.Timeout);
        error.Message.ShouldContain("DecodeTimeout limit of 40 ms");
        clock.Elapsed.ShouldBeLessThan(full.Elapsed, "the decode was stopped early, not waited out");
    }

    [Fact]
    public void Slow_decode_of_an_exif_rotated_jpeg_stops_at_the_deadline()
    {
        // To rotate, vips_thumbnail decodes the whole image to memory before the deadline is armed: a rotated
        // photo whose deadline is honoured stops well before the same pixels, unrotated, take to decode.
        const int width = 6000, height = 4000;
        var pattern = Pattern(width, height);
        var plain = ImageCorpus.Save(pattern, width, height, 3, ".jpg[Q=95]");
        var rotated = ImageCorpus.Save(pattern, width, height, 3, ".jpg[Q=95]", v => v.WithInt("orientation", 6));
        var full = System.Diagnostics.Stopwatch.StartNew();
        new VipsImageCodec(new ImagingOptions()).Decode(plain).Width.ShouldBe(width);
        full.Stop();
        // The deadline and the bound both scale with this machine's speed: a tenth of the full decode, and half
        // of it for the deadline plus header parsing and the tile in flight (a fixed 40 ms would leave no margin
        // on a machine that decodes the whole image in 160 ms).
        var codec = new VipsImageCodec(new ImagingOptions { DecodeTimeout = full.Elapsed / 10 });

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var error = Should.Throw<ImageException>(() => codec.Decode(rotated));
        clock.Stop();

        error.Kind.ShouldBe(ImageErrorKind.Timeout);
        clock.Elapsed.ShouldBeLessThan(full.Elapsed / 2, $"the decode was stopped early, not waited out (unrotated decode {full.Elapsed})");
    }

    private static byte[] Pattern(int width, int height)
    {
        var pixels = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var o = (y * width + x) * 3;
                (pixels[o], pixels[o + 1], pixels[o + 2]) = ((byte)(x ^ y), (byte)(x * 3), (byte)(y * 7));
            }
        }

        return pixels;
    }
}
