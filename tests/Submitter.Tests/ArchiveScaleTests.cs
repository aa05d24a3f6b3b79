using System.Text.Json;
using System.Text.RegularExpressions;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Storage;
using MambaSt.Batch.Storage.Local;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Storage;
using MambaSt.Batch.Testing;

using MassTransit;

using Spectre.Console;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary>Issue 21 (records, retry-pending, "already done" by metadata): real RabbitMQ, real local and Azurite stores.</summary>
[Trait(TestTraits.Category, TestTraits.Integration)]
public partial class ArchiveScaleTests(LocalServices services)
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    [Fact]
    public async Task Retry_pending_resends_only_jobs_without_an_outcome_whose_last_send_is_older_than_the_limit()
    {
        var ct = Within(TimeSpan.FromSeconds(120));
        using var dir = new TempDir();
        var (output, batchId, broker, jobs) = await BatchAsync(dir, ct);
        try
        {
            // Before: watch reports the two pending jobs and how long the oldest has waited.
            using (var brief = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                brief.CancelAfter(TimeSpan.FromSeconds(15)); // past the bus start, however loaded the machine
                var watch = await new BatchWatch(QuietConsole()).RunAsync(output, batchId, broker, keepQueue: true, brief.Token);
                watch.Pending.ShouldBe(2);
                watch.OldestPending!.Value.ShouldBeGreaterThan(TimeSpan.FromHours(2.9));
            }

            var run = await CliRunner.RunAsync("retry-pending", "--batch-id", batchId, "--output", output.Location, "--broker", services.RabbitMqUrl, "--queue", broker.Queue, "--older-than", "2h");
            run.Exit.ShouldBe(0, run.Error);
            run.Out.ShouldContain("1 pending jobs");
            (await BatchTopology.CountMessagesAsync(broker, broker.Queue, ct)).ShouldBe(1u);

            var tally = await BatchTally.LoadAsync(output, batchId, ct);
            tally.TryGet(jobs[2].JobId, out var resent).ShouldBeTrue();
            new DateTimeOffset(resent.LastSentTicks, TimeSpan.Zero).ShouldBeGreaterThan(Now.AddMinutes(-1));
            tally.StatusOf(jobs[0].JobId).ShouldBe(JobStatus.Done);
            tally.StatusOf(jobs[1].JobId).ShouldBe(JobStatus.Failed);

            var again = await CliRunner.RunAsync("retry-pending", "--batch-id", batchId, "--output", output.Location, "--broker", services.RabbitMqUrl, "--queue", broker.Queue, "--older-than", "2h");
            again.Exit.ShouldBe(0, again.Error);
            again.Out.ShouldContain("0 pending jobs");
            (await BatchTopology.CountMessagesAsync(broker, broker.Queue, ct)).ShouldBe(1u);
        }
        finally
        {
            await CleanUpAsync(broker, batchId);
        }
    }

    [Fact]
    public async Task Malformed_record_lines_are_counted_and_reported()
    {
        var ct = Within(TimeSpan.FromSeconds(60));
        using var dir = new TempDir();
        var (output, batchId, broker, _) = await BatchAsync(dir, ct);
        await File.AppendAllTextAsync(dir.Path($"out/{BatchPaths.Events(batchId, "first")}"), "{\"jobId\": \"not-a-guid\"\n{\"torn", ct);

        var report = await CliRunner.RunAsync("report", "--batch-id", batchId, "--output", output.Location);

        report.Exit.ShouldBe(0, report.Error);
        report.Error.ShouldContain("2 malformed record lines skipped");
        report.Error.ShouldContain($"{BatchPaths.Events(batchId, "first")}:3");
        JsonLines.Read<OutcomeRecord>("{\"jobId\":\"" + Guid.NewGuid() + "\",\"status\":\"done\"}\nnope\n", out var malformed).Count.ShouldBe(1);
        malformed.ShouldBe(1);
        await CleanUpAsync(broker, batchId);
    }

    [Fact]
    public async Task Watch_appends_only_new_records_and_acks_after_the_append()
    {
        // Issue 21 finding 3: watch rewrote events-<run>.jsonl whole on every flush. 1000 events arrive in flushes of
        // at most 128: rewriting writes several times the record, appending writes it once.
        var ct = Within(TimeSpan.FromSeconds(180));
        using var dir = new TempDir();
        const int count = 1000;
        var (output, batchId, broker, jobs) = await BatchAsync(dir, ct, count, settled: false);
        try
        {
            await BatchTopology.EnsureWatchQueueAsync(broker, batchId, ct);
            var publisher = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(services.RabbitMqUri));
            await publisher.StartAsync(ct);
            try
            {
                foreach (var job in jobs)
                {
                    await publisher.Publish(new ImageStylized
                    {
                        JobId = job.JobId, BatchId = batchId, OutputRef = job.OutputRef, Width = 8, Height = 8, OutputBytes = 1,
                        Timings = new StageTimings { TotalMs = 1 }, ModelId = "stand-in", ModelVersion = "0", WorkerId = "stand-in",
                    }, c => c.Headers.Set(BatchTopology.BatchIdHeader, batchId), ct);
                }
            }
            finally
            {
                await publisher.StopAsync(CancellationToken.None);
            }

            var counting = new CountingStore(output);
            var result = await new BatchWatch(QuietConsole()).RunAsync(counting, batchId, broker, keepQueue: false, ct);

            result.Done.ShouldBe(count);
            var files = Directory.GetFiles(dir.Path($"out/{BatchPaths.Folder(batchId)}"), "events-*.jsonl").Where(f => !f.EndsWith("events-first.jsonl", StringComparison.Ordinal)).ToList();
            var size = files.Sum(f => new FileInfo(f).Length);
            JsonLines.Read<OutcomeRecord>(await File.ReadAllTextAsync(files.ShouldHaveSingleItem(), ct)).Select(r => r.JobId).Distinct().Count().ShouldBe(count);
            counting.EventBytes.ShouldBeLessThanOrEqualTo((long)(size * 1.05), $"watch wrote {counting.EventBytes} bytes for a {size}-byte record in {counting.EventWrites} writes");
            counting.EventWrites.ShouldBeGreaterThan(1);
        }
        finally
        {
            await CleanUpAsync(broker, batchId);
        }
    }

    [Fact]
    public async Task Blob_records_are_numbered_segments_written_create_if_absent_and_read_back_as_one_stream()
    {
        var ct = Within(TimeSpan.FromSeconds(60));
        Environment.SetEnvironmentVariable("Storage__ConnectionString", services.BlobConnectionString);
        var output = (BlobArchiveStore)ArchiveStores.Open($"az://mambast-records-{Guid.NewGuid():N}"[..40] + "/out");
        await output.TryCreateContainerAsync(ct);
        var batchId = "seg";
        var log = new RecordLog<OutcomeRecord>(output, BatchPaths.Events(batchId, "run1"));
        var ids = Enumerable.Range(0, 5).Select(_ => Guid.NewGuid()).ToList();
        await log.AppendAsync([Done(ids[0]), Done(ids[1])], ct);
        await log.AppendAsync([Done(ids[2])], ct);
        await log.AppendAsync([Done(ids[3]), Done(ids[4])], ct);

        var names = await output.ListAsync(BatchPaths.Folder(batchId), ct).Select(i => i.RelativePath).ToListAsync(ct);
        names.ShouldBe(new[] { 1, 2, 3 }.Select(n => BlobArchiveStore.SegmentName(BatchPaths.Events(batchId, "run1"), n)).ToList());
        var issues = new RecordIssues();
        (await BatchRecords.ReadEventsAsync(output, batchId, issues, ct).Select(r => r.JobId).ToListAsync(ct)).ShouldBe(ids);
        issues.MalformedLines.ShouldBe(0);
        log.BytesWritten.ShouldBe(JsonLines.Write(ids.Select(Done)).Length);
    }

    [Fact]
    public async Task Submit_counts_an_output_as_done_only_when_its_metadata_names_the_job_and_overwrite_replaces_another_jobs()
    {
        // Issue 21 finding 6: an output made by another job (another style or options) was "already done".
        var ct = Within(TimeSpan.FromSeconds(90));
        using var dir = TempDir.WithImages(1, size: 8);
        var queue = $"stylize-test-{Guid.NewGuid():N}";
        var batchId = "meta-" + queue[^8..];
        string[] submit = ["submit", dir.Path("in"), "--style", dir.Path("style.png"), "--out", dir.Path("out"), "--broker", services.RabbitMqUrl, "--queue", queue, "--batch-id", batchId];
        var broker = new BrokerSettings { Url = services.RabbitMqUri, Queue = queue };
        try
        {
            var first = await CliRunner.RunAsync([.. submit, "--dry-run"]);
            first.Exit.ShouldBe(0, first.Error);
            var jobId = Guid.Parse(GuidPattern().Match(first.Out).Value);

            var store = new LocalFolderStore(dir.Path("out"));
            var other = Guid.NewGuid();
            await store.PutAsync("img0.jpg", new MemoryStream([1, 2, 3]), new BlobWriteOptions
            {
                Metadata = new Dictionary<string, string> { ["mambast_job_id"] = other.ToString(), ["mambast_options_hash"] = "0123456789abcdef", ["mambast_batch_id"] = "earlier", ["mambast_model_id"] = "mamba-st", ["mambast_model_version"] = "0.5.0" },
            }, ct);

            var dry = await CliRunner.RunAsync([.. submit, "--dry-run"]);
            dry.Exit.ShouldBe(0, dry.Error);
            dry.Out.ShouldContain("0 already done");
            dry.Out.ShouldContain("would enqueue 0");
            dry.Error.ShouldContain($"img0.png (job {jobId}): output");
            dry.Error.ShouldContain($"was made by job {other} of batch earlier with model mamba-st 0.5.0; differs in options");
            dry.Error.ShouldContain("pass --overwrite");

            var overwrite = await CliRunner.RunAsync([.. submit, "--overwrite"]);
            overwrite.Exit.ShouldBe(0, overwrite.Error);
            overwrite.Out.ShouldContain("enqueued 1");
            File.Exists(dir.Path("out/img0.jpg")).ShouldBeFalse();
            (await BatchTopology.CountMessagesAsync(broker, queue, ct)).ShouldBe(1u);

            // Its own output, by metadata, is done.
            await store.PutAsync("img0.jpg", new MemoryStream([1]), new BlobWriteOptions { Metadata = new Dictionary<string, string> { ["mambast_job_id"] = jobId.ToString() } }, ct);
            var mine = await CliRunner.RunAsync([.. submit, "--dry-run"]);
            mine.Out.ShouldContain("1 already done");
            mine.Error.ShouldNotContain("made by job");
        }
        finally
        {
            await CleanUpAsync(broker, batchId);
        }
    }

    [Fact]
    public async Task Watch_does_not_count_an_output_made_by_another_job_as_done()
    {
        var ct = Within(TimeSpan.FromSeconds(60));
        using var dir = new TempDir();
        var (output, batchId, broker, jobs) = await BatchAsync(dir, ct);
        try
        {
            var store = new LocalFolderStore(dir.Path("out"));
            await store.PutAsync(jobs[2].OutputPath, new MemoryStream([1]), new BlobWriteOptions { Metadata = new Dictionary<string, string> { ["mambast_job_id"] = Guid.NewGuid().ToString() } }, ct);
            await store.PutAsync(jobs[3].OutputPath, new MemoryStream([1]), new BlobWriteOptions { Metadata = new Dictionary<string, string> { ["mambast_job_id"] = jobs[3].JobId.ToString() } }, ct);

            using var brief = CancellationTokenSource.CreateLinkedTokenSource(ct);
            brief.CancelAfter(TimeSpan.FromSeconds(15)); // past the bus start, however loaded the machine
            var watch = await new BatchWatch(QuietConsole()).RunAsync(output, batchId, broker, keepQueue: true, brief.Token);

            watch.Done.ShouldBe(2); // jobs[0] by its event, jobs[3] by its output's metadata
            watch.Pending.ShouldBe(1);
            watch.MismatchCount.ShouldBe(1);
            watch.Mismatches.ShouldHaveSingleItem().ShouldContain(jobs[2].RelativePath);
        }
        finally
        {
            await CleanUpAsync(broker, batchId);
        }
    }

    [Fact]
    public void The_resolver_cache_is_bounded_however_many_distinct_storage_settings_a_process_sees()
    {
        // Issue 21 item 9: one resolver (and its stores) was kept per distinct Storage section, for ever.
        Environment.SetEnvironmentVariable("Storage__ConnectionString", services.BlobConnectionString);
        try
        {
            for (var i = 0; i < 3 * ArchiveStores.MaxResolvers; i++)
            {
                Environment.SetEnvironmentVariable("Storage__ListPageSize", (500 + i).ToString(System.Globalization.CultureInfo.InvariantCulture));
                ArchiveStores.Open("az://mambast-cache-test/out").ShouldBeOfType<BlobArchiveStore>();
                ArchiveStores.CachedResolvers.ShouldBeLessThanOrEqualTo(ArchiveStores.MaxResolvers);
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable("Storage__ListPageSize", null);
        }
    }

    /// <summary>Four jobs sent 3 h ago: 0 done, 1 failed, 2 pending, 3 pending but sent again 10 minutes ago.</summary>
    private async Task<(IArchiveStore Output, string BatchId, BrokerSettings Broker, List<JobRecord> Jobs)> BatchAsync(TempDir dir, CancellationToken ct, int count = 4, bool settled = true)
    {
        var output = ArchiveStores.Open(dir.Path("out"));
        var queue = $"stylize-test-{Guid.NewGuid():N}";
        var batchId = "scale-" + queue[^8..];
        var broker = new BrokerSettings { Url = services.RabbitMqUri, Queue = queue };
        var jobs = Enumerable.Range(0, count).Select(i => new JobRecord
        {
            JobId = Guid.NewGuid(), RelativePath = $"img{i}.png", ContentRef = dir.Path($"in/img{i}.png"), OutputRef = dir.Path($"out/img{i}.jpg"), OutputPath = $"img{i}.jpg",
        }).ToList();
        var info = new BatchInfo
        {
            BatchId = batchId, Source = dir.Path("in"), Output = output.Location, StyleRef = dir.Path("style.png"), Options = new StylizeOptions(), Queue = queue,
        };
        await output.WriteTextAsync(BatchPaths.Batch(batchId), JsonSerializer.Serialize(info, JsonLines.Options), ct);
        await output.WriteTextAsync(BatchPaths.Jobs(batchId), JsonLines.Write(jobs), ct);
        await output.AppendLinesAsync(BatchPaths.Enqueued(batchId, "first"), JsonLines.Write(jobs.Select(j => new EnqueuedRecord { JobId = j.JobId, At = Now.AddHours(-3) })), ct);
        if (settled)
        {
            await output.AppendLinesAsync(BatchPaths.Enqueued(batchId, "second"), JsonLines.Write([new EnqueuedRecord { JobId = jobs[3].JobId, At = Now.AddMinutes(-10) }]), ct);
            await output.AppendLinesAsync(BatchPaths.Events(batchId, "first"), JsonLines.Write(
            [
                Done(jobs[0].JobId),
                new OutcomeRecord { JobId = jobs[1].JobId, Status = JobStatus.Failed, ErrorCode = StylizationErrorCode.InvalidImage, Message = "bad", At = Now.AddHours(-2) },
            ]), ct);
        }

        return (output, batchId, broker, jobs);
    }

    private static OutcomeRecord Done(Guid id) => new() { JobId = id, Status = JobStatus.Done, At = Now.AddHours(-2) };

    private static async Task CleanUpAsync(BrokerSettings broker, string batchId)
    {
        await BatchTopology.DeleteWatchQueueAsync(broker, broker.Queue, CancellationToken.None);
        await BatchTopology.DeleteWatchQueueAsync(broker, BatchPaths.WatchQueue(batchId), CancellationToken.None);
    }

    private static CancellationToken Within(TimeSpan limit)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(limit);
        return cts.Token;
    }

    private static IAnsiConsole QuietConsole() =>
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null), Interactive = InteractionSupport.No });

    [GeneratedRegex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")]
    private static partial Regex GuidPattern();

    /// <summary>The real store, counting what is written to event records (whole rewrites or appends).</summary>
    private sealed class CountingStore(IArchiveStore inner) : IArchiveStore
    {
        private long _bytes;
        private int _writes;

        public long EventBytes => Interlocked.Read(ref _bytes);

        public int EventWrites => Volatile.Read(ref _writes);

        public string Location => inner.Location;

        public bool IsLocal => inner.IsLocal;

        public string RefFor(string relativePath) => inner.RefFor(relativePath);

        public IAsyncEnumerable<ArchiveItem> ListAsync(string relativePrefix, CancellationToken cancellationToken) => inner.ListAsync(relativePrefix, cancellationToken);

        public Task<string> IdentifyAsync(ArchiveItem item, CancellationToken cancellationToken) => inner.IdentifyAsync(item, cancellationToken);

        public Task<bool> ExistsAsync(string relativePath, CancellationToken cancellationToken) => inner.ExistsAsync(relativePath, cancellationToken);

        public Task<IReadOnlyDictionary<string, string>?> ReadMetadataAsync(string relativePath, CancellationToken cancellationToken) => inner.ReadMetadataAsync(relativePath, cancellationToken);

        public Task<bool> DeleteAsync(string relativePath, CancellationToken cancellationToken) => inner.DeleteAsync(relativePath, cancellationToken);

        public Task<string?> ReadTextAsync(string relativePath, CancellationToken cancellationToken) => inner.ReadTextAsync(relativePath, cancellationToken);

        public IAsyncEnumerable<string> ReadLinesAsync(string relativePath, CancellationToken cancellationToken) => inner.ReadLinesAsync(relativePath, cancellationToken);

        public Task AppendLinesAsync(string relativePath, string lines, CancellationToken cancellationToken)
        {
            Count(relativePath, lines);
            return inner.AppendLinesAsync(relativePath, lines, cancellationToken);
        }

        public Task WriteTextAsync(string relativePath, string text, CancellationToken cancellationToken)
        {
            Count(relativePath, text);
            return inner.WriteTextAsync(relativePath, text, cancellationToken);
        }

        public Task<bool> UploadIfAbsentAsync(string relativePath, string localFile, CancellationToken cancellationToken) => inner.UploadIfAbsentAsync(relativePath, localFile, cancellationToken);

        private void Count(string relativePath, string text)
        {
            if (!relativePath.Contains("/events-", StringComparison.Ordinal)) return;
            Interlocked.Add(ref _bytes, System.Text.Encoding.UTF8.GetByteCount(text));
            Interlocked.Increment(ref _writes);
        }
    }
}
