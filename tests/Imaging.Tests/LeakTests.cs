using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Imaging.Tests;

[CollectionDefinition(DisableParallelization = true)]
public sealed class MemoryMeasurement;

/// <summary>Runs alone: RSS is per process, so concurrent tests would blur it.</summary>
[Collection(typeof(MemoryMeasurement))]
public sealed class LeakTests
{
    [Fact]
    public void Thousand_decode_resize_encode_cycles_keep_rss_flat()
    {
        var codec = new VipsImageCodec(new ImagingOptions());
        var jpeg = ImageCorpus.QuadrantFile(".jpg[Q=90]", 96, 64);
        var png = ImageCorpus.QuadrantFile(".png", 96, 64);

        void Cycle(int i)
        {
            var image = codec.Decode(i % 2 == 0 ? jpeg : png, new DecodeOptions { MaxSide = 80 });
            var resized = codec.Resize(image, 48, 32);
            codec.Encode(resized, new EncodeOptions { Format = i % 3 == 0 ? OutputFormat.Webp : OutputFormat.Jpeg }).Length.ShouldBeGreaterThan(0);
        }

        for (var i = 0; i < 200; i++)
        {
            Cycle(i);
        }

        var before = Rss();
        for (var i = 0; i < 1000; i++)
        {
            Cycle(i);
        }

        var after = Rss();

        after.ShouldBeLessThanOrEqualTo((long)(before * 1.10), $"RSS grew from {before} kB to {after} kB");
    }

    private static long Rss()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
    }
}
