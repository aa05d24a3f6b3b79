using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using MambaSt.Batch.Contracts;
using MambaSt.Batch.Imaging;
using MambaSt.Batch.Inference;
using MambaSt.Batch.Storage;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

// Usage: MambaSt.Batch.Benchmarks.Pipeline [--images N] [--size PX] [--model DIR] [--batch N] [--threads N]
// Needs MAMBAST_RABBITMQ_URL and MAMBAST_BLOB_CONNECTION (eval "$(scripts/services.sh up)").
var argList = args.ToList();
string Arg(string name, string fallback) => argList.IndexOf(name) is var i and >= 0 && i + 1 < argList.Count ? argList[i + 1] : fallback;
var repo = FindRepo();
var images = int.Parse(Arg("--images", "48"), CultureInfo.InvariantCulture);
var size = int.Parse(Arg("--size", "256"), CultureInfo.InvariantCulture);
var batch = int.Parse(Arg("--batch", "8"), CultureInfo.InvariantCulture);
var threads = int.Parse(Arg("--threads", "2"), CultureInfo.InvariantCulture);
var model = Arg("--model", Directory.Exists(Path.Combine(repo, "models", "default")) ? Path.Combine(repo, "models", "default") : Path.Combine(repo, "tests", "fixtures", "golden", "tiny-sequential"));
var rabbit = Environment.GetEnvironmentVariable("MAMBAST_RABBITMQ_URL") ?? throw new InvalidOperationException("set MAMBAST_RABBITMQ_URL (eval \"$(scripts/services.sh up)\")");
var blob = Environment.GetEnvironmentVariable("MAMBAST_BLOB_CONNECTION") ?? throw new InvalidOperationException("set MAMBAST_BLOB_CONNECTION");

var codec = new VipsImageCodec(new ImagingOptions());
var jpegs = Enumerable.Range(0, images).Select(i => codec.Encode(Synthetic(size, size, i), new EncodeOptions { Quality = 90 })).ToArray();
var styleJpeg = codec.Encode(Synthetic(size, size, 999), new EncodeOptions { Quality = 90 });

// 1. The engine alone: decoded pixels in, pixels out, same batch size, same style.
double engineMs;
using (var engine = MambaStEngine.Create(new InferenceOptions { ModelDirectory = model, IntraOpThreads = threads, InterOpThreads = 1 }))
{
    var pixels = jpegs.Select(j => codec.Decode(j)).Select(p => new ContentItem { Content = new RgbPixels(p.Pixels, p.Width, p.Height), Seed = 1 }).ToArray();
    var styleImg = codec.Decode(styleJpeg);
    var style = engine.EncodeStyle(new RgbPixels(styleImg.Pixels, styleImg.Width, styleImg.Height));
    engine.Stylize(style, pixels[..1]);
    var sw = Stopwatch.StartNew();
    for (var i = 0; i < pixels.Length; i += batch) engine.Stylize(style, pixels[i..Math.Min(i + batch, pixels.Length)]);
    engineMs = sw.Elapsed.TotalMilliseconds;
    Console.WriteLine($"model {engine.Model.Id} {engine.Model.Version} ({engine.Model.Config}, {engine.Model.ScanVariant})");
}

// 2. The pipeline: upload, send, the worker process fetches, decodes, stylizes, encodes, writes, publishes.
var id = Guid.NewGuid().ToString("N")[..8];
var queue = $"bench-{id}";
var container = $"bench-{id}";
var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Storage:ConnectionString"] = blob }).Build();
await using var provider = new ServiceCollection().AddBlobStorage(configuration).BuildServiceProvider();
var store = provider.GetRequiredService<IStorageResolver>().Resolve($"az://{container}/x").Store;
await store.CreateContainerIfMissingAsync(CancellationToken.None);
await store.PutAsync("style.jpg", new MemoryStream(styleJpeg), null, CancellationToken.None);
await Parallel.ForEachAsync(Enumerable.Range(0, images), async (i, ct) => await store.PutAsync($"in/{i:D4}.jpg", new MemoryStream(jpegs[i]), null, ct));

var done = new ConcurrentDictionary<Guid, ImageStylized>();
var failed = new ConcurrentDictionary<Guid, ImageStylizationFailed>();
var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
{
    cfg.Host(new Uri(rabbit));
    cfg.ReceiveEndpoint($"{queue}-observer", e =>
    {
        e.AutoDelete = true;
        e.Handler<ImageStylized>(c => { if (c.Message.BatchId == id) done[c.Message.JobId] = c.Message; return Task.CompletedTask; });
        e.Handler<ImageStylizationFailed>(c => { if (c.Message.BatchId == id) failed[c.Message.JobId] = c.Message; return Task.CompletedTask; });
    });
});
await bus.StartAsync();
var workerDll = Path.Combine(repo, "src", "Worker", "bin", "Release", "net10.0", "MambaSt.Batch.Worker.dll");
if (!File.Exists(workerDll)) workerDll = workerDll.Replace("Release", "Debug", StringComparison.Ordinal);
var psi = new ProcessStartInfo("dotnet", [workerDll]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetDirectoryName(workerDll)! };
psi.Environment["Broker__Url"] = rabbit;
psi.Environment["Storage__ConnectionString"] = blob;
psi.Environment["Inference__ModelDirectory"] = model;
psi.Environment["Inference__IntraOpThreads"] = threads.ToString(CultureInfo.InvariantCulture);
psi.Environment["Worker__QueueName"] = queue;
psi.Environment["Worker__BatchMessageLimit"] = batch.ToString(CultureInfo.InvariantCulture);
psi.Environment["Worker__PrefetchCount"] = (batch * 3).ToString(CultureInfo.InvariantCulture);
psi.Environment["Health__Port"] = "0";
psi.Environment["Logging__LogLevel__Default"] = "Warning";
using var worker = Process.Start(psi)!;
worker.OutputDataReceived += (_, _) => { };
worker.ErrorDataReceived += (_, _) => { };
worker.BeginOutputReadLine();
worker.BeginErrorReadLine();

// Warm-up job (model load and first run are not throughput), then the measured run.
var endpoint = await bus.GetSendEndpoint(new Uri($"queue:{queue}"));
StylizeImage Job(int i, string output) => new()
{
    JobId = Guid.NewGuid(), BatchId = id, ContentRef = $"az://{container}/in/{i:D4}.jpg", StyleRef = $"az://{container}/style.jpg",
    OutputRef = $"az://{container}/{output}", Options = new StylizeOptions { Format = OutputFormat.Jpeg, Seed = i },
};
await endpoint.Send(Job(0, "warmup.jpg"));
await WaitFor(() => done.Count + failed.Count >= 1, TimeSpan.FromMinutes(3));
done.Clear();
var pipelineSw = Stopwatch.StartNew();
await endpoint.SendBatch(Enumerable.Range(0, images).Select(i => Job(i, $"out/{i:D4}.jpg")));
await WaitFor(() => done.Count + failed.Count >= images, TimeSpan.FromMinutes(20));
var pipelineMs = pipelineSw.Elapsed.TotalMilliseconds;
worker.Kill(entireProcessTree: true);
await bus.StopAsync();

var engineRate = images / (engineMs / 1000);
var pipelineRate = images / (pipelineMs / 1000);
var t = done.Values.ToArray();
Console.WriteLine($"{images} images {size}x{size}, batch {batch}, IntraOpThreads {threads}, {Environment.ProcessorCount} logical CPUs; failed: {failed.Count}");
Console.WriteLine("| path | images/s | ms/image |");
Console.WriteLine("|---|---|---|");
Console.WriteLine($"| engine alone (decoded pixels, in process) | {engineRate:F2} | {engineMs / images:F0} |");
Console.WriteLine($"| pipeline (RabbitMQ + Azurite + worker process: fetch, decode, stylize, encode, write, publish) | {pipelineRate:F2} | {pipelineMs / images:F0} |");
Console.WriteLine($"| ratio pipeline / engine | {pipelineRate / engineRate:P0} | |");
if (t.Length > 0)
{
    Console.WriteLine($"mean per-job stage ms: fetch {t.Average(x => x.Timings.FetchMs):F1}, decode {t.Average(x => x.Timings.DecodeMs):F1}, style {t.Average(x => x.Timings.StyleEncodeMs):F1}, " +
                      $"inference {t.Average(x => x.Timings.InferenceMs):F1}, encode {t.Average(x => x.Timings.EncodeMs):F1}, write {t.Average(x => x.Timings.WriteMs):F1}");
}

return failed.IsEmpty ? 0 : 1;

static async Task WaitFor(Func<bool> condition, TimeSpan timeout)
{
    var deadline = DateTime.UtcNow + timeout;
    while (!condition())
    {
        if (DateTime.UtcNow > deadline) throw new TimeoutException("the pipeline did not finish in time");
        await Task.Delay(50);
    }
}

static RgbImage Synthetic(int w, int h, int seed)
{
    var rgb = new byte[w * h * 3];
    for (var y = 0; y < h; y++)
    {
        for (var x = 0; x < w; x++)
        {
            var o = (y * w + x) * 3;
            rgb[o] = (byte)((x + seed * 31) % 256);
            rgb[o + 1] = (byte)((y * 2 + seed * 7) % 256);
            rgb[o + 2] = (byte)(((x ^ y) + seed) % 256);
        }
    }

    return new RgbImage(w, h, rgb);
}

static string FindRepo()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
    {
        if (File.Exists(Path.Combine(d.FullName, "MambaSt.Batch.sln"))) return d.FullName;
    }

    throw new InvalidOperationException("repository root not found");
}
