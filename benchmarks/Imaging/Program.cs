using System.Diagnostics;
using MambaSt.Batch.Contracts;
using MambaSt.Batch.Imaging;

const int Width = 4000, Height = 3000, Side = 1024;
var runs = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 5;

var source = Generate12MegapixelJpeg();
Console.WriteLine($"libvips {VipsImageCodec.LibraryDescription}");
Console.WriteLine($"input: {Width}x{Height} JPEG Q90, {source.Length / 1024} KiB; {runs} runs, median; {Environment.ProcessorCount} CPUs");
Console.WriteLine();
Console.WriteLine("| case | vips threads | parallel jobs | decode ms | resize ms | encode ms | total ms/image |");
Console.WriteLine("|---|---|---|---|---|---|---|");

Measure("shrink-on-load to 1024, encode JPEG Q90", concurrency: 1, jobs: 1, shrinkOnLoad: true);
Measure("shrink-on-load to 1024, encode JPEG Q90", concurrency: 2, jobs: 1, shrinkOnLoad: true);
Measure("shrink-on-load to 1024, encode JPEG Q90", concurrency: 1, jobs: 2, shrinkOnLoad: true);
Measure("full decode, Resize to 1024, encode JPEG Q90", concurrency: 1, jobs: 1, shrinkOnLoad: false);
Measure("full decode, Resize to 1024, encode JPEG Q90", concurrency: 2, jobs: 1, shrinkOnLoad: false);
Measure("full decode, Resize to 1024, encode JPEG Q90", concurrency: 1, jobs: 2, shrinkOnLoad: false);

void Measure(string name, int concurrency, int jobs, bool shrinkOnLoad)
{
    var codec = new VipsImageCodec(new ImagingOptions { Concurrency = concurrency });
    One(codec, shrinkOnLoad);
    var samples = new List<(double Decode, double Resize, double Encode, double PerImage)>();
    for (var run = 0; run < runs; run++)
    {
        var wall = Stopwatch.StartNew();
        var results = new (double, double, double)[jobs];
        Parallel.For(0, jobs, new ParallelOptions { MaxDegreeOfParallelism = jobs }, j => results[j] = One(codec, shrinkOnLoad));
        wall.Stop();
        samples.Add((results.Average(r => r.Item1), results.Average(r => r.Item2), results.Average(r => r.Item3), wall.Elapsed.TotalMilliseconds / jobs));
    }

    Console.WriteLine(
        $"| {name} | {concurrency} | {jobs} | {Median(samples.Select(s => s.Decode)):0} | {Median(samples.Select(s => s.Resize)):0} " +
        $"| {Median(samples.Select(s => s.Encode)):0} | {Median(samples.Select(s => s.PerImage)):0} |");
}

(double Decode, double Resize, double Encode) One(VipsImageCodec codec, bool shrinkOnLoad)
{
    var clock = Stopwatch.StartNew();
    var image = codec.Decode(source, shrinkOnLoad ? new DecodeOptions { MaxSide = Side } : null);
    var decode = clock.Elapsed.TotalMilliseconds;
    clock.Restart();
    if (!shrinkOnLoad)
    {
        image = codec.Resize(image, Side, Side * image.Height / image.Width);
    }

    var resize = clock.Elapsed.TotalMilliseconds;
    clock.Restart();
    codec.Encode(image, new EncodeOptions { Format = OutputFormat.Jpeg, Quality = 90 });
    return (decode, resize, clock.Elapsed.TotalMilliseconds);
}

static double Median(IEnumerable<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
}

static byte[] Generate12MegapixelJpeg()
{
    var pixels = new byte[Width * Height * 3];
    for (var y = 0; y < Height; y++)
    {
        for (var x = 0; x < Width; x++)
        {
            var o = (y * Width + x) * 3;
            pixels[o] = (byte)(x * 255 / Width);
            pixels[o + 1] = (byte)(y * 255 / Height);
            pixels[o + 2] = (byte)((x ^ y) & 0xFF);
        }
    }

    return new VipsImageCodec(new ImagingOptions()).Encode(new RgbImage(Width, Height, pixels), new EncodeOptions { Format = OutputFormat.Jpeg, Quality = 90 });
}
