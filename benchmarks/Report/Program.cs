using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Imaging;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Storage;

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

// `report --format html` on N synthetic jobs with one outcome event each (20 distinct 1024x768 images behind the
// references, so the 48 thumbnails are real decodes), against `report --format csv` on the same records, in one run.
// Usage: dotnet run -c Release --project benchmarks/Report -- [jobs=100000]
var jobs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100_000;
var root = Path.Combine(Path.GetTempPath(), "mambast-bench-report-" + Guid.NewGuid().ToString("N")[..8]);
try
{
    var services = new ServiceCollection();
    services.AddImaging(new ConfigurationBuilder().Build());
    using var provider = services.BuildServiceProvider();
    var codec = provider.GetRequiredService<IImageCodec>();
    var random = new Random(7);
    Directory.CreateDirectory(Path.Combine(root, "images"));
    for (var i = 0; i < 20; i++)
    {
        var pixels = new byte[1024 * 768 * 3];
        random.NextBytes(pixels);
        await File.WriteAllBytesAsync(Path.Combine(root, "images", $"c{i}.jpg"), codec.Encode(new RgbImage(1024, 768, pixels), new EncodeOptions { Quality = 85 }));
    }

    var output = new LocalArchiveStore(Path.Combine(root, "out"));
    const string BatchId = "bench";
    var start = DateTimeOffset.UtcNow.AddHours(-8);
    var info = new BatchInfo { BatchId = BatchId, Source = root, Output = output.Root, StyleRef = Path.Combine(root, "images", "c0.jpg"), Options = new StylizeOptions(), Queue = "stylize-image", CreatedAt = start };
    await output.WriteTextAsync(BatchPaths.Batch(BatchId), JsonSerializer.Serialize(info, JsonLines.Options), CancellationToken.None);
    var jobRecords = Enumerable.Range(0, jobs).Select(i => new JobRecord
    {
        JobId = Guid.CreateVersion7(), RelativePath = $"photos/{i:D7}.jpg", ContentRef = Path.Combine(root, "images", $"c{i % 20}.jpg"),
        OutputRef = Path.Combine(root, "images", $"c{(i + 3) % 20}.jpg"), OutputPath = $"photos/{i:D7}.jpg",
    }).ToList();
    await output.WriteTextAsync(BatchPaths.Jobs(BatchId), JsonLines.Write(jobRecords), CancellationToken.None);
    var events = jobRecords.Select((j, i) => i % 50 == 7
        ? new OutcomeRecord { JobId = j.JobId, Status = JobStatus.Failed, ErrorCode = StylizationErrorCode.InvalidImage, Message = "corrupt", WorkerId = $"worker-{i % 12}", At = start.AddSeconds(i * 0.25) }
        : new OutcomeRecord
        {
            JobId = j.JobId, Status = JobStatus.Done, OutputRef = j.OutputRef, WorkerId = $"worker-{i % 12}", ModelId = "mambast-small", ModelVersion = "0.5.0", At = start.AddSeconds(i * 0.25),
            Timings = new StageTimings { FetchMs = 20 + (i % 40), DecodeMs = 30 + (i % 17), StyleEncodeMs = 2, InferenceMs = 1800 + (i % 500), EncodeMs = 25, WriteMs = 40 + (i % 90), TotalMs = 2000 + (i % 700) },
            Quality = new OutputQuality { LumaStdDev = i % 997 == 0 ? 1.5 : 48, ContentDifference = 35 },
        }).ToList();
    await output.WriteTextAsync(BatchPaths.Events(BatchId, "run1"), JsonLines.Write(events), CancellationToken.None);
    var recordBytes = Directory.EnumerateFiles(Path.Combine(output.Root, BatchPaths.Folder(BatchId))).Sum(f => new FileInfo(f).Length);
    jobRecords = null;
    events = null;
    GC.Collect();

    Console.WriteLine($"report benchmark: {jobs} jobs, {recordBytes / 1e6:0.0} MB of records, {Environment.ProcessorCount} cores");
    // HTML first: the peak working set is the process's so far, so the second row cannot show less than the first.
    Console.WriteLine("format | seconds | peak working set MB (process so far) | output KB");
    var html = await Measure("html", async () =>
    {
        var file = Path.Combine(root, "report.html");
        var result = await new BatchHtmlReport(codec, new HtmlReportOptions()).WriteAsync(output, BatchId, file, CancellationToken.None);
        return result.Bytes;
    });
    var csv = await Measure("csv (baseline)", async () =>
    {
        var rows = await BatchReport.BuildAsync(output, BatchId, CancellationToken.None);
        var text = BatchReport.ToCsv(rows);
        return text.Length;
    });
    Console.WriteLine($"html / csv time: {html / csv:0.00}x");
}
finally
{
    Directory.Delete(root, recursive: true);
}

static async Task<double> Measure(string name, Func<Task<long>> run)
{
    GC.Collect();
    var sw = Stopwatch.StartNew();
    var bytes = await run();
    var seconds = sw.Elapsed.TotalSeconds;
    using var process = Process.GetCurrentProcess();
    Console.WriteLine($"{name} | {seconds:0.00} | {process.PeakWorkingSet64 / 1e6:0} | {bytes / 1024}");
    return seconds;
}
