using MambaSt.Batch.Contracts;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Jobs;
using MambaSt.Batch.Submitter.Storage;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary>
/// The <c>enqueued-&lt;run&gt;.jsonl</c> record of a send run survives failed writes: a failed periodic flush is
/// tried again and the final write still happens; a final write that fails is reported with the count.
/// Real RabbitMQ; the storage fault comes from a wrapper around a real local store.
/// </summary>
[Trait(TestTraits.Category, TestTraits.Integration)]
public class EnqueueRecordTests(LocalServices services)
{
    private const int JobCount = 5;

    [Fact]
    public async Task A_failed_flush_of_the_enqueued_record_neither_loses_later_sends_nor_fails_the_run()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var store = FailingWritesStore.EnqueuedRecord(new LocalArchiveStore(dir.Root), failures: 1);
        var (info, jobs, broker) = Batch();
        try
        {
            // The first confirm waits past the 1 s flush tick, so the failing write is a periodic one; the second
            // waits past the next tick, whose write must already have recorded what was confirmed by then.
            var folder = dir.Path(BatchPaths.Folder(info.BatchId));
            var recordedBeforeTheEnd = 0;
            var sent = await Submission.EnqueueAsync(store, info, jobs, broker, maxInFlight: 1, null, n =>
            {
                if (n == 1) Thread.Sleep(1500);
                if (n != 2) return;
                Thread.Sleep(1500);
                var early = Directory.Exists(folder) ? Directory.GetFiles(folder, "enqueued-*.jsonl") : [];
                if (early.Length == 1) recordedBeforeTheEnd = JsonLines.Read<EnqueuedRecord>(File.ReadAllText(early[0])).Count;
            }, ct);

            sent.ShouldBe(JobCount);
            store.Failed.ShouldBe(1);
            recordedBeforeTheEnd.ShouldBeGreaterThanOrEqualTo(1, "the periodic write after the failed one recorded the confirmed jobs");
            var files = Directory.GetFiles(folder, "enqueued-*.jsonl");
            files.Length.ShouldBe(1);
            var recorded = JsonLines.Read<EnqueuedRecord>(await File.ReadAllTextAsync(files[0], ct)).Select(r => r.JobId).ToList();
            recorded.ShouldBe(jobs.Select(j => j.JobId), ignoreOrder: true);
        }
        finally
        {
            await BatchTopology.DeleteWatchQueueAsync(broker, broker.Queue, CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_failed_final_write_is_reported_with_the_number_of_unrecorded_jobs()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var store = FailingWritesStore.EnqueuedRecord(new LocalArchiveStore(dir.Root), failures: int.MaxValue);
        var (info, jobs, broker) = Batch();
        try
        {
            var error = await Should.ThrowAsync<UnreachableException>(() => Submission.EnqueueAsync(store, info, jobs, broker, maxInFlight: 8, null, null, ct));

            error.ExitCode.ShouldBe(ExitCodes.Unreachable);
            error.Message.ShouldContain($"{JobCount} jobs the broker confirmed could not be recorded in {BatchPaths.Folder(info.BatchId)}enqueued-");
            error.Message.ShouldContain("storage outage");
            (await BatchTopology.CountMessagesAsync(broker, broker.Queue, ct)).ShouldBe((uint)JobCount);
        }
        finally
        {
            await BatchTopology.DeleteWatchQueueAsync(broker, broker.Queue, CancellationToken.None);
        }
    }

    private (BatchInfo Info, List<JobRecord> Jobs, BrokerSettings Broker) Batch()
    {
        var queue = $"stylize-test-{Guid.NewGuid():N}";
        var info = new BatchInfo
        {
            BatchId = "record-" + queue[^8..], Source = "in", Output = "out", StyleRef = "style.png", Options = new StylizeOptions(),
            Queue = queue, CreatedAt = DateTimeOffset.UtcNow,
        };
        var jobs = Enumerable.Range(0, JobCount).Select(i => new JobRecord
        {
            JobId = Guid.NewGuid(), RelativePath = $"img{i}.png", ContentRef = $"in/img{i}.png", OutputRef = $"out/img{i}.jpg", OutputPath = $"img{i}.jpg",
        }).ToList();
        return (info, jobs, new BrokerSettings { Url = services.RabbitMqUri, Queue = queue });
    }
}
