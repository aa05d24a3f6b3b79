using MambaSt.Batch.Processing.Ports;

namespace MambaSt.Batch.Processing.Tests;

public class OutputQualityMeterTests
{
    [Fact]
    public void A_flat_output_has_zero_luma_spread_and_a_copy_of_the_content_has_zero_difference()
    {
        var content = Noise(16, 12, seed: 1);
        var flat = new RgbFrame(Enumerable.Repeat((byte)90, 16 * 12 * 3).ToArray(), 16, 12);

        var flatQuality = OutputQualityMeter.Measure(content, flat);
        flatQuality.LumaStdDev.ShouldBe(0);
        flatQuality.ContentDifference.ShouldBeGreaterThan(10);

        var copy = OutputQualityMeter.Measure(content, content);
        copy.ContentDifference.ShouldBe(0);
        copy.LumaStdDev.ShouldBeGreaterThan(20);
    }

    [Fact]
    public void Sizes_that_differ_compare_the_content_at_the_output_grid()
    {
        var content = Noise(8, 8, seed: 2);
        var doubled = new byte[16 * 16 * 3];
        for (var y = 0; y < 16; y++)
        {
            for (var x = 0; x < 16; x++) Array.Copy(content.Rgb, 3 * ((y / 2 * 8) + (x / 2)), doubled, 3 * ((y * 16) + x), 3);
        }

        OutputQualityMeter.Measure(content, new RgbFrame(doubled, 16, 16)).ContentDifference.ShouldBe(0);
    }

    private static RgbFrame Noise(int w, int h, int seed)
    {
        var bytes = new byte[w * h * 3];
        new Random(seed).NextBytes(bytes);
        return new RgbFrame(bytes, w, h);
    }
}
