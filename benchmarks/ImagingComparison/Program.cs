using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using MambaSt.Batch.Contracts;
using MambaSt.Batch.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

// The imaging benchmark's case: a 12 MP JPEG (Q90), shrunk so the longest side is 1024, encoded as JPEG Q90.
// Both libraries run on one thread (the worker's default Imaging:Concurrency), alternating in every round so
// that load from other processes on a shared machine falls on both alike. Memory: peak RSS above the RSS of a
// fresh child process per library that holds only the encoded file (one process would let the first library's
// pools and heap hide the second's), for the first image (library start-up and JIT included) and over 4 images.
const int Width = 4000, Height = 3000, Side = 1024, Quality = 90;

if (args is ["--memory", var which, var path])
{
    // Nothing but the encoded file in memory yet: neither library may reuse heap another step left behind.
    var jpeg = File.ReadAllBytes(path);
    GC.Collect();
    var before = Status("VmRSS");
    File.WriteAllText("/proc/self/clear_refs", "5");
    var run = Library(which);
    run(jpeg);
    var first = Status("VmHWM") - before;
    for (var i = 0; i < 3; i++)
    {
        run(jpeg);
    }

    Console.WriteLine($"{first} {Status("VmHWM") - before}");
    return;
}

var rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 9;
var source = Generate12MegapixelJpeg();
var vips = Library("netvips");
var sharp = Library("imagesharp");
Console.WriteLine(
    $"libvips {VipsImageCodec.LibraryDescription}; SixLabors.ImageSharp " +
    typeof(Image).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion);
Console.WriteLine($"input: {Width}x{Height} JPEG Q{Quality}, {source.Length / 1024} KiB; {rounds} interleaved rounds after one warm-up each; {Environment.ProcessorCount} CPUs; .NET {Environment.Version}");
vips(source);
sharp(source);

// Wall time, and the process's CPU time (all threads: libvips workers, GC), which other processes' load on a
// shared machine disturbs far less than wall time.
var times = new Dictionary<string, List<double>> { ["netvips"] = [], ["imagesharp"] = [] };
var cpu = new Dictionary<string, List<double>> { ["netvips"] = [], ["imagesharp"] = [] };
using var self = Process.GetCurrentProcess();
for (var round = 0; round < rounds; round++)
{
    // Alternate who goes first, so neither always runs on a cache the other warmed or cooled.
    foreach (var name in round % 2 == 0 ? new[] { "netvips", "imagesharp" } : ["imagesharp", "netvips"])
    {
        var run = name == "netvips" ? vips : sharp;
        self.Refresh();
        var cpuBefore = self.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        run(source);
        times[name].Add(clock.Elapsed.TotalMilliseconds);
        self.Refresh();
        cpu[name].Add((self.TotalProcessorTime - cpuBefore).TotalMilliseconds);
    }
}

var file = Path.Combine(Path.GetTempPath(), $"imaging-comparison-{Environment.ProcessId}.jpg");
File.WriteAllBytes(file, source);
var memory = times.Keys.ToDictionary(name => name, name => Memory(name, file));
File.Delete(file);
Console.WriteLine();
Console.WriteLine("| library | wall ms/image, median (min-max) | CPU ms/image, median (min-max) | peak RSS above start, first image, MiB | peak RSS above start, 4 images, MiB |");
Console.WriteLine("|---|---|---|---|---|");
foreach (var (name, samples) in times)
{
    Console.WriteLine(
        $"| {name} | {Median(samples):0} ({samples.Min():0}-{samples.Max():0}) | {Median(cpu[name]):0} ({cpu[name].Min():0}-{cpu[name].Max():0}) " +
        $"| {memory[name].First:0} | {memory[name].Steady:0} |");
}

Console.WriteLine();
Console.WriteLine(
    $"time ratio imagesharp/netvips (medians of the same run): wall {Median(times["imagesharp"]) / Median(times["netvips"]):0.0}x, " +
    $"CPU {Median(cpu["imagesharp"]) / Median(cpu["netvips"]):0.0}x");
Console.WriteLine(
    $"memory ratio imagesharp/netvips: first image {memory["imagesharp"].First / memory["netvips"].First:0.0}x, " +
    $"4 images {memory["imagesharp"].Steady / memory["netvips"].Steady:0.0}x");

static Action<byte[]> Library(string name)
{
    switch (name)
    {
        case "netvips":
            // The product path: shrink-on-load decode to 1024, then encode.
            var codec = new VipsImageCodec(new ImagingOptions { Concurrency = 1 });
            return bytes =>
            {
                var image = codec.Decode(bytes, new DecodeOptions { MaxSide = Side });
                codec.Encode(image, new EncodeOptions { Format = OutputFormat.Jpeg, Quality = Quality });
            };
        case "imagesharp":
            var configuration = Configuration.Default.Clone();
            configuration.MaxDegreeOfParallelism = 1;
            return bytes =>
            {
                using var image = Image.Load<Rgb24>(configuration, bytes);
                image.Mutate(x => x.AutoOrient().Resize(new ResizeOptions
                {
                    Size = new Size(Side, Side),
                    Mode = ResizeMode.Max,
                    Sampler = KnownResamplers.Lanczos3,
                }));
                using var output = new MemoryStream();
                image.SaveAsJpeg(output, new JpegEncoder { Quality = Quality });
            };
        default:
            throw new ArgumentOutOfRangeException(nameof(name), name, "netvips or imagesharp");
    }
}

static (double First, double Steady) Memory(string name, string file)
{
    var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true };
    if (!Environment.ProcessPath!.EndsWith("ImagingComparison", StringComparison.Ordinal))
    {
        start.ArgumentList.Add(typeof(Program).Assembly.Location);
    }

    start.ArgumentList.Add("--memory");
    start.ArgumentList.Add(name);
    start.ArgumentList.Add(file);
    using var child = Process.Start(start)!;
    var line = child.StandardOutput.ReadToEnd().Trim().Split(' ');
    child.WaitForExit();
    return (long.Parse(line[0], CultureInfo.InvariantCulture) / 1024.0, long.Parse(line[1], CultureInfo.InvariantCulture) / 1024.0);
}



static long Status(string field)
{
    var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal));
    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
}

static double Median(IEnumerable<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
}

static byte[] Generate12MegapixelJpeg()
{
    // The same picture as benchmarks/Imaging.
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

    return new VipsImageCodec(new ImagingOptions()).Encode(new RgbImage(Width, Height, pixels), new EncodeOptions { Format = OutputFormat.Jpeg, Quality = Quality });
}
