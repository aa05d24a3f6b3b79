using System.Diagnostics;
using System.Globalization;
using MambaSt.Batch.Inference;

// Usage: MambaSt.Batch.Benchmarks.Inference [--quick] [--threads N] [--repeats N] [--configs tiny,small,base]
//        [--sizes 256,512] [--batches 1,4] [--scans fused,sequential,parallel] [--no-torch] [--repo PATH]
// fused: the sequential export's *.fused.onnx with libmambast_ops.so (PyTorch column: its parallel scan).
var args2 = args.ToList();
string Arg(string name, string fallback)
{
    var i = args2.IndexOf(name);
    return i >= 0 && i + 1 < args2.Count ? args2[i + 1] : fallback;
}

var quick = args2.Contains("--quick");
var threads = int.Parse(Arg("--threads", "2"), CultureInfo.InvariantCulture);
var repeats = int.Parse(Arg("--repeats", "1"), CultureInfo.InvariantCulture);
var configs = Arg("--configs", quick ? "tiny,small" : "tiny,small,base").Split(',');
var sizes = Arg("--sizes", quick ? "256" : "256,512").Split(',').Select(int.Parse).ToArray();
var batches = Arg("--batches", quick ? "1" : "1,4").Split(',').Select(int.Parse).ToArray();
var scans = Arg("--scans", "sequential,parallel").Split(',');
var withTorch = !args2.Contains("--no-torch");
var repo = Arg("--repo", FindRepo());

Console.WriteLine($"ONNX Runtime {OrtEnvironment.Instance.GetVersionString()} CPU from C#, IntraOpThreads={threads}, " +
                  $"{Environment.ProcessorCount} logical CPUs, one warm-up run per model and size, median of {repeats}; strength 1, style = content size");
Console.WriteLine("Wall-clock ms, and in brackets the process CPU ms (all threads), which is less sensitive to other load on a shared machine.");
Console.WriteLine("| config | size | scan | batch | style encoder ms | stylizer ms/image | total ms/image (CPU ms) | images/s | PyTorch ms/image (CPU ms) | PyTorch / ORT wall (CPU) |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
foreach (var config in configs)
{
    foreach (var scan in scans)
    {
        var dir = ModelDirectory(config, scan);
        var options = new InferenceOptions
        {
            ModelDirectory = dir, IntraOpThreads = threads, InterOpThreads = 1, MaxSide = 4096, StyleMaxSide = 4096,
            // "fused": the sequential export's fused siblings with libmambast_ops.so; the others: their own graphs
            Scan = scan == "fused" ? ScanMode.Fused : ScanMode.Sequential,
            ExecutionProvider = Environment.GetEnvironmentVariable("Inference__ExecutionProvider") == "Cuda" ? ExecutionProviderKind.Cuda : ExecutionProviderKind.Cpu,
        };
        using var engine = MambaStEngine.Create(options);
        foreach (var size in sizes)
        {
            var style = Image(size, 1);
            var items = Enumerable.Range(0, batches.Max()).Select(i => new ContentItem { Content = Image(size, 10 + i), Seed = (ulong)i }).ToArray();
            var warm = engine.EncodeStyle(style);
            engine.Stylize(warm, items[..1]);
            var (encodeMs, encodeCpu) = Median(repeats, () => engine.EncodeStyle(style));
            (double Wall, double Cpu)? torchMs = withTorch && config != "tiny" ? TorchMs(config, size, scan == "fused" ? "parallel" : scan) : null;
            foreach (var batch in batches)
            {
                var (stylizeWall, stylizeCpu) = Median(repeats, () => engine.Stylize(warm, items[..batch]));
                var stylizeMs = stylizeWall / batch;
                var total = encodeMs / batch + stylizeMs;
                var totalCpu = (encodeCpu + stylizeCpu) / batch;
                var torch = torchMs is { } t && batch == 1 ? $"{t.Wall:F0} ({t.Cpu:F0}) | {t.Wall / total:F2}x ({t.Cpu / totalCpu:F2}x)" : "- | -";
                Console.WriteLine($"| {config} | {size}x{size} | {scan} | {batch} | {encodeMs:F0} | {stylizeMs:F0} | {total:F0} ({totalCpu:F0}) | {1000 / total:F2} | {torch} |");
            }
        }
    }
}

return 0;

(double Wall, double Cpu) Median(int n, Action action)
{
    var times = new (double Wall, double Cpu)[n];
    using var process = Process.GetCurrentProcess();
    for (var i = 0; i < n; i++)
    {
        process.Refresh();
        var cpu0 = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        action();
        var wall = sw.Elapsed.TotalMilliseconds;
        process.Refresh();
        times[i] = (wall, (process.TotalProcessorTime - cpu0).TotalMilliseconds);
    }

    Array.Sort(times);
    return times[n / 2];
}

string ModelDirectory(string config, string scan)
{
    if (config == "tiny")
    {
        return Path.Combine(repo, "tests", "fixtures", "golden", $"tiny-{scan}");
    }

    scan = scan == "fused" ? "sequential" : scan; // the fused graphs are the sequential export's siblings
    var dir = Path.Combine(repo, "artifacts", "models", $"{config}-{scan}");
    if (!File.Exists(Path.Combine(dir, ModelFiles.Stylizer)) || !File.Exists(Path.Combine(dir, "stylizer.fused.onnx")))
    {
        Console.Error.WriteLine($"exporting {config}/{scan} (random init, seed 1) to {dir}");
        Python(Path.Combine(repo, "model"), ["-m", "mambast.export", "--random-init", "--config", config, "--seed", "1", "--scan", scan, "--out", dir], null);
    }

    return dir;
}

// The PyTorch baseline: model/bench.py's own timing function (time_one) for just this row, batch 1, in the same run.
// Its CPU time is measured around the whole call (one warm-up plus the timed runs) and divided by their number.
(double Wall, double Cpu) TorchMs(string config, int size, string scan)
{
    var script = string.Join("; ",
        "import bench, torch, time",
        $"torch.set_num_threads({threads})",
        $"m = bench.build_model(bench.get_config('{config}'), seed=0)",
        $"m.scan.variant = '{scan}'",
        "c0 = time.process_time()",
        $"enc, sty = bench.time_one(m, {size}, {repeats})",
        $"print('TORCH_MS', enc + sty, 1e3 * (time.process_time() - c0) / {repeats + 1})");
    var output = Python(Path.Combine(repo, "model"), ["-c", script],
        new() { ["MALLOC_MMAP_MAX_"] = "0", ["MALLOC_TRIM_THRESHOLD_"] = (1L << 40).ToString(CultureInfo.InvariantCulture) });
    var line = output.Split('\n').Single(l => l.StartsWith("TORCH_MS ", StringComparison.Ordinal));
    var parts = line.Split(' ');
    return (double.Parse(parts[1], CultureInfo.InvariantCulture), double.Parse(parts[2], CultureInfo.InvariantCulture));
}

static string Python(string workingDirectory, string[] arguments, Dictionary<string, string>? environment)
{
    var start = new ProcessStartInfo("/usr/bin/python3") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true };
    foreach (var a in arguments)
    {
        start.ArgumentList.Add(a);
    }

    foreach (var (k, v) in environment ?? [])
    {
        start.Environment[k] = v;
    }

    using var process = Process.Start(start)!;
    var output = process.StandardOutput.ReadToEnd();
    process.WaitForExit();
    if (process.ExitCode != 0)
    {
        throw new InvalidOperationException($"python3 {string.Join(' ', arguments)} exited with {process.ExitCode}");
    }

    return output;
}

static RgbPixels Image(int size, int seed)
{
    var random = new Random(seed);
    var rgb = new byte[3 * size * size];
    for (var i = 0; i < rgb.Length; i++)
    {
        rgb[i] = (byte)((i / 3 % size + i / 3 / size) * 255 / (2 * size) + random.Next(0, 32));
    }

    return new RgbPixels(rgb, size, size);
}

static string FindRepo()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "MambaSt.Batch.sln")))
        {
            return dir.FullName;
        }
    }

    return Directory.GetCurrentDirectory();
}
