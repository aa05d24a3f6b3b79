using System.Diagnostics;
using System.Globalization;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Jobs;

// `records [N] [baselineN] [folder]`: batch records at archive scale (RecordsBenchmark.cs); no broker needed.
if (args.Length > 0 && args[0].StartsWith("records", StringComparison.Ordinal)) return await MambaSt.Batch.Benchmarks.Submit.RecordsBenchmark.RunAsync(args);

// Jobs/s of StylizeImage sends with publisher confirms, storage dry (references only, no uploads),
// through the same JobBus.SendAllAsync that `mambast submit` uses. Each setting uses its own queue,
// deleted afterwards.
var jobs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 10_000;
int[] inFlight = args.Length > 1 ? args[1..].Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray() : [1, 32, 256];
var url = Environment.GetEnvironmentVariable("MAMBAST_RABBITMQ_URL") ?? Environment.GetEnvironmentVariable("Broker__Url") ?? BrokerSettings.DefaultUrl;

Console.WriteLine($"submit benchmark: {jobs} jobs per setting, broker {BrokerSettings.Redact(url)}, {Environment.ProcessorCount} cores");
Console.WriteLine("max-in-flight | jobs | seconds | jobs/s");
foreach (var limit in inFlight)
{
    var count = limit == 1 ? Math.Min(jobs, 1_000) : jobs;
    var broker = BrokerSettings.Resolve(url, $"bench-submit-{Guid.NewGuid():N}");
    var options = new StylizeOptions();
    var messages = Enumerable.Range(0, count).Select(i => new StylizeImage
    {
        JobId = JobIdentity.JobId($"blob:archive/{i:D6}.jpg:1000:etag:0x{i:X}", "style:sha256:00", options),
        BatchId = "bench",
        ContentRef = $"az://archive/photos/{i:D6}.jpg",
        StyleRef = "az://styles/starry.jpg",
        OutputRef = $"az://out/photos/{i:D6}.jpg",
        Options = options,
        SubmittedAt = DateTimeOffset.UtcNow,
    }).ToList();

    await using (var bus = await JobBus.StartAsync(broker, CancellationToken.None))
    {
        await bus.SendAsync(messages[0], CancellationToken.None);
        var clock = Stopwatch.StartNew();
        var sent = await bus.SendAllAsync(messages.Skip(1), limit, _ => { }, CancellationToken.None);
        clock.Stop();
        var waiting = await BatchTopology.CountMessagesAsync(broker, broker.Queue, CancellationToken.None);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{limit,13} | {sent,4} | {clock.Elapsed.TotalSeconds,7:F2} | {sent / clock.Elapsed.TotalSeconds,6:F0}   (queue holds {waiting})"));
    }

    await BatchTopology.DeleteWatchQueueAsync(broker, broker.Queue, CancellationToken.None);
}

return 0;
