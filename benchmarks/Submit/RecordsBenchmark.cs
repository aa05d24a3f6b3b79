using System.Diagnostics;
using System.Globalization;
using System.Text;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Storage;

namespace MambaSt.Batch.Benchmarks.Submit;

/// <summary>
/// Batch records at archive scale (issue 21): writes N synthetic outcome records the way <c>watch</c> does (flushes of
/// 128 events, each durable before its ack) and reads them back into the batch's progress, on a local folder.
/// New: append + fsync per flush, streamed read into a <see cref="BatchTally"/>. Baseline (the code before issue 21),
/// measured in the same run: rewrite of the whole record per flush (at a smaller N: it is quadratic, so its bytes are
/// also given scaled to N) and a read of the whole file as one string into full records, in a child process so that its
/// peak RSS is its own; the new read runs in a child process too. Prints time, peak RSS (VmHWM) and bytes written per event, logical (handed to storage) and
/// physical (/proc/self/io write_bytes: what reached the block layer, fsync page rewrites included).
/// </summary>
public static class RecordsBenchmark
{
    public const int FlushBatch = 128; // BatchWatch.FlushBatch

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length >= 2 && args[0] == "records-baseline-read") return await BaselineReadAsync(args[1]);
        if (args.Length >= 2 && args[0] == "records-read") return await NewReadAsync(args[1]);
        var n = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1_000_000;
        var baselineN = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 20_000;
        var root = Path.Combine(args.Length > 3 ? args[3] : Path.GetTempPath(), $"mambast-records-bench-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        try
        {
            Console.WriteLine($"records benchmark: {n:N0} outcome records (baseline rewrite at {baselineN:N0}), local folder {root}, {Environment.ProcessorCount} cores, .NET {Environment.Version}");
            var store = new LocalArchiveStore(root);
            const string batchId = "bench";
            var jobIds = WriteBatch(root, batchId, n);
            var recordSize = Encoding.UTF8.GetByteCount(JsonLines.Write([Outcome(jobIds[0], 0)]));

            // New: append per flush.
            var io0 = PhysicalWriteBytes();
            var clock = Stopwatch.StartNew();
            var log = new RecordLog<OutcomeRecord>(store, BatchPaths.Events(batchId, "new"));
            var pending = new List<OutcomeRecord>(FlushBatch);
            for (var i = 0; i < n; i++)
            {
                pending.Add(Outcome(jobIds[i], i));
                if (pending.Count == FlushBatch || i == n - 1)
                {
                    await log.AppendAsync(pending, CancellationToken.None);
                    pending.Clear();
                }
            }

            var writeSeconds = clock.Elapsed.TotalSeconds;
            var physical = PhysicalWriteBytes() - io0;
            var fileBytes = new FileInfo(Path.Combine(root, BatchPaths.Events(batchId, "new"))).Length;
            var writePeak = PeakRssMb(); // the writer (watch's flushes), with the set-up's N job ids

            // New read: the batch's progress from its records (what watch, retry-failed and retry-pending load), in a
            // child process like the baseline read, so each peak RSS is the reader's own.
            var (readSeconds, newPeak, readDone) = await RunChildAsync("records-read", root);
            if (readDone != n) throw new InvalidOperationException($"read back {readDone} done of {n}");

            // Baseline write: the whole record rewritten per flush (BatchWatch before issue 21), at baselineN.
            var baseIds = Enumerable.Range(0, baselineN).Select(i => Guid.NewGuid()).ToArray();
            var recorded = new List<OutcomeRecord>();
            long baseBytes = 0;
            io0 = PhysicalWriteBytes();
            clock.Restart();
            for (var i = 0; i < baselineN; i++)
            {
                recorded.Add(Outcome(baseIds[i], i));
                if (recorded.Count % FlushBatch == 0 || i == baselineN - 1)
                {
                    var text = JsonLines.Write(recorded);
                    await store.WriteTextAsync(BatchPaths.Events(batchId + "-base", "old"), text, CancellationToken.None);
                    baseBytes += Encoding.UTF8.GetByteCount(text);
                }
            }

            var baseWriteSeconds = clock.Elapsed.TotalSeconds;
            var basePhysical = PhysicalWriteBytes() - io0;
            // Rewrite-all writes sum_{k=1..n/128} 128 k records = about n^2 / 256 records: scale quadratically.
            var scale = (double)n * n / ((double)baselineN * baselineN);

            // Baseline read (the whole file as one string, full records kept) of the N-record file, in a child process.
            var child = await RunChildAsync("records-baseline-read", Path.Combine(root, BatchPaths.Events(batchId, "new")));

            var newPerEvent = (double)log.BytesWritten / n;
            var basePerEvent = (double)baseBytes / baselineN;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"record size: {recordSize} bytes per event (one JSON line); events file: {fileBytes / 1e6:F1} MB"));
            Console.WriteLine("approach | events | write s | read s | peak RSS MB | logical bytes/event (x record) | physical bytes/event (x record)");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"append + fsync per flush, streamed read (new) | {n:N0} | {writeSeconds:F1} | {readSeconds:F1} | {newPeak:F0} (writer {writePeak:F0}) | {newPerEvent:F0} ({newPerEvent / recordSize:F2}x) | {(double)physical / n:F0} ({(double)physical / n / recordSize:F2}x)"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"rewrite per flush (old), measured | {baselineN:N0} | {baseWriteSeconds:F1} | - | - | {basePerEvent:F0} ({basePerEvent / recordSize:F1}x) | {(double)basePhysical / baselineN:F0} ({(double)basePhysical / baselineN / recordSize:F1}x)"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"rewrite per flush (old), scaled to N | {n:N0} | ~{baseWriteSeconds * scale:F0} | - | - | {basePerEvent * n / baselineN:F0} ({basePerEvent * n / baselineN / recordSize:F0}x; {baseBytes * scale / 1e12:F2} TB in all) | -"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"read as one string, full records (old) | {n:N0} | - | {child.Seconds:F1} | {child.PeakMb:F0} | - | -"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ratios new/old: peak RSS of the read {newPeak / child.PeakMb:F2}x, read time {readSeconds / child.Seconds:F2}x, logical bytes per event at N {newPerEvent / (basePerEvent * n / baselineN):E1}x"));
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static OutcomeRecord Outcome(Guid id, int i) => new()
    {
        JobId = id,
        Status = JobStatus.Done,
        OutputRef = $"az://archive-stylized/photos/{2000 + i % 25}/{i % 12 + 1:D2}/roll-{i / 1000:D5}/IMG_{i:D7}.jpg",
        Timings = new StageTimings { FetchMs = 12.25 + i % 7, DecodeMs = 31.5, StyleEncodeMs = 0.01, InferenceMs = 412.375 + i % 13, EncodeMs = 18.125, WriteMs = 22.5, TotalMs = 497.26 + i % 17 },
        WorkerId = $"mambast-worker-7d9f8c6b5-{i % 16:x4}z",
        At = new DateTimeOffset(2026, 12, 7, 23, 0, 0, TimeSpan.Zero).AddMilliseconds(i * 37.0),
    };

    /// <summary>batch.json and jobs.jsonl for N jobs, streamed (setup, not measured).</summary>
    private static Guid[] WriteBatch(string root, string batchId, int n)
    {
        var folder = Path.Combine(root, BatchPaths.Folder(batchId));
        Directory.CreateDirectory(folder);
        var info = new BatchInfo
        {
            BatchId = batchId, Source = "az://archive/photos", Output = root, StyleRef = "az://styles/starry.jpg", Options = new StylizeOptions(), Queue = "stylize-image",
        };
        File.WriteAllText(Path.Combine(root, BatchPaths.Batch(batchId)), System.Text.Json.JsonSerializer.Serialize(info, JsonLines.Options));
        var ids = new Guid[n];
        using var writer = new StreamWriter(Path.Combine(root, BatchPaths.Jobs(batchId)));
        for (var i = 0; i < n; i++)
        {
            ids[i] = Guid.NewGuid();
            writer.Write(JsonLines.Write([new JobRecord
            {
                JobId = ids[i], RelativePath = $"{2000 + i % 25}/{i % 12 + 1:D2}/IMG_{i:D7}.jpg", ContentRef = $"az://archive/photos/{2000 + i % 25}/{i % 12 + 1:D2}/IMG_{i:D7}.jpg",
                OutputRef = $"az://archive-stylized/photos/{2000 + i % 25}/{i % 12 + 1:D2}/IMG_{i:D7}.jpg", OutputPath = $"{2000 + i % 25}/{i % 12 + 1:D2}/IMG_{i:D7}.jpg",
            }]));
        }

        return ids;
    }

    private static async Task<int> NewReadAsync(string root)
    {
        var clock = Stopwatch.StartNew();
        var tally = await BatchTally.LoadAsync(new LocalArchiveStore(root), "bench", CancellationToken.None);
        var seconds = clock.Elapsed.TotalSeconds;
        if (tally.Issues.MalformedLines != 0) throw new InvalidOperationException($"{tally.Issues.MalformedLines} malformed lines");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{seconds:F3} {PeakRssMb():F1} {tally.Done}"));
        return 0;
    }

    private static async Task<int> BaselineReadAsync(string file)
    {
        var clock = Stopwatch.StartNew();
        var records = JsonLines.Read<OutcomeRecord>(await File.ReadAllTextAsync(file));
        var outcomes = new Dictionary<Guid, OutcomeRecord>();
        foreach (var r in records) BatchState.Merge(outcomes, r);
        var seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{seconds:F3} {PeakRssMb():F1} {outcomes.Count}"));
        return 0;
    }

    private static async Task<(double Seconds, double PeakMb, int Done)> RunChildAsync(string mode, string file)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        var entry = Environment.GetCommandLineArgs()[0];
        if (entry.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)) psi.ArgumentList.Add(entry); // dotnet app.dll
        psi.ArgumentList.Add(mode);
        psi.ArgumentList.Add(file);
        using var process = Process.Start(psi)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        var parts = output.Trim().Split(' ');
        return (double.Parse(parts[0], CultureInfo.InvariantCulture), double.Parse(parts[1], CultureInfo.InvariantCulture), int.Parse(parts[2], CultureInfo.InvariantCulture));
    }

    private static double PeakRssMb() => StatusKb("VmHWM:") / 1024.0;

    private static long StatusKb(string key) =>
        File.ReadLines("/proc/self/status").Where(l => l.StartsWith(key, StringComparison.Ordinal))
            .Select(l => long.Parse(l[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture)).FirstOrDefault();

    private static long PhysicalWriteBytes() =>
        File.ReadLines("/proc/self/io").Where(l => l.StartsWith("write_bytes:", StringComparison.Ordinal))
            .Select(l => long.Parse(l["write_bytes:".Length..].Trim(), CultureInfo.InvariantCulture)).FirstOrDefault();
}
