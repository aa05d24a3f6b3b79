using System.Text.Json;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Jobs;
using MambaSt.Batch.Submitter.Storage;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary><c>retry-failed</c> on a batch whose records say that jobs failed, on real RabbitMQ (no worker: the sends stay queued).</summary>
[Trait(TestTraits.Category, TestTraits.Integration)]
public class RetryFailedTests(LocalServices services)
{
    private static readonly DateTimeOffset FirstFailure = DateTimeOffset.UtcNow.AddHours(-1);

    [Fact]
    public async Task An_interrupted_retry_failed_run_again_sends_the_failed_jobs_it_had_not_sent()
    {
        var ct = Within(TimeSpan.FromSeconds(90));
        using var dir = new TempDir();
        var (output, batchId, broker) = await FailedBatchAsync(dir, 10, ct);
        try
        {
            using var interrupt = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var confirmed = 0;
            await Should.ThrowAsync<OperationCanceledException>(() => RetryFailed.RunAsync(output, batchId, broker, queueGiven: true, 1, n =>
            {
                confirmed = n;
                if (n == 4) interrupt.Cancel();
            }, interrupt.Token));
            confirmed.ShouldBeInRange(4, 5); // a send started before the cancel is awaited

            var state = await BatchState.LoadAsync(output, batchId, ct);
            state.Jobs.Count(j => state.StatusOf(j.JobId) == JobStatus.Pending).ShouldBe(confirmed);
            state.Jobs.Count(j => state.StatusOf(j.JobId) == JobStatus.Failed).ShouldBe(10 - confirmed);

            var second = await RetryFailed.RunAsync(output, batchId, broker, queueGiven: true, 1, null, ct);
            second.ShouldBe(10 - confirmed);
            (await BatchTopology.CountMessagesAsync(broker, broker.Queue, ct)).ShouldBe(10u);
            var after = await BatchState.LoadAsync(output, batchId, ct);
            after.Jobs.ShouldAllBe(j => after.StatusOf(j.JobId) == JobStatus.Pending);
            (await RetryFailed.RunAsync(output, batchId, broker, queueGiven: true, 1, null, ct)).ShouldBe(0);
        }
        finally
        {
            await CleanUpAsync(broker, batchId);
        }
    }

    [Fact]
    public async Task A_new_failure_stamped_by_a_worker_clock_behind_the_submitters_makes_the_retried_job_failed_again()
    {
        var ct = Within(TimeSpan.FromSeconds(90));
        using var dir = new TempDir();
        var (output, batchId, broker) = await FailedBatchAsync(dir, 1, ct);
        try
        {
            (await RetryFailed.RunAsync(output, batchId, broker, queueGiven: true, 1, null, ct)).ShouldBe(1);
            var state = await BatchState.LoadAsync(output, batchId, ct);
            var job = state.Jobs.Single().JobId;
            state.StatusOf(job).ShouldBe(JobStatus.Pending);

            // The retried job fails again on a worker whose clock is 10 minutes behind the submitter's:
            // its failure is stamped before the moment retry-failed sent it, yet after the failure it retried.
            await WriteEventsAsync(output, batchId, "b-replay", [Failure(job, FirstFailure)]);
            (await BatchState.LoadAsync(output, batchId, ct)).StatusOf(job).ShouldBe(JobStatus.Pending);
            await WriteEventsAsync(output, batchId, "a-skewed", [Failure(job, DateTimeOffset.UtcNow.AddMinutes(-10), "failed again")]);
            var again = await BatchState.LoadAsync(output, batchId, ct);
            again.StatusOf(job).ShouldBe(JobStatus.Failed);
            again.Outcomes[job].Message.ShouldBe("failed again");
            (await RetryFailed.RunAsync(output, batchId, broker, queueGiven: true, 1, null, ct)).ShouldBe(1);
        }
        finally
        {
            await CleanUpAsync(broker, batchId);
        }
    }


    [Fact]
    public void The_outcome_of_a_retried_job_does_not_depend_on_the_order_its_records_are_merged_in()
    {
        var job = Guid.NewGuid();
        var failure = Failure(job, FirstFailure);
        var retry = new OutcomeRecord { JobId = job, Status = JobStatus.Pending, At = DateTimeOffset.UtcNow, RetryOf = FirstFailure };
        var laterFailure = Failure(job, FirstFailure.AddSeconds(1), "failed again");
        var done = new OutcomeRecord { JobId = job, Status = JobStatus.Done, At = FirstFailure.AddSeconds(-1) };

        foreach (var order in Permutations([failure, retry, laterFailure])) Merged(order).ShouldBe(laterFailure);
        foreach (var order in Permutations([failure, retry, failure])) Merged(order).ShouldBe(retry);
        foreach (var order in Permutations([failure, retry, laterFailure, done])) Merged(order).ShouldBe(done);

        static OutcomeRecord Merged(IEnumerable<OutcomeRecord> records)
        {
            var outcomes = new Dictionary<Guid, OutcomeRecord>();
            foreach (var r in records) BatchState.Merge(outcomes, r);
            return outcomes.Values.Single();
        }
    }

    private static IEnumerable<IReadOnlyList<T>> Permutations<T>(IReadOnlyList<T> items) =>
        items.Count <= 1
            ? [items]
            : Enumerable.Range(0, items.Count).SelectMany(i =>
                Permutations(items.Where((_, j) => j != i).ToList()).Select(rest => (IReadOnlyList<T>)[items[i], .. rest]));

    private static OutcomeRecord Failure(Guid job, DateTimeOffset at, string message = "stand-in failure") => new()
    {
        JobId = job, Status = JobStatus.Failed, ErrorCode = StylizationErrorCode.InvalidImage, Message = message, WorkerId = "stand-in", At = at,
    };

    /// <summary>A batch of <paramref name="count"/> jobs that all failed once, as watch records it.</summary>
    [Fact]
    public async Task Without_a_queue_option_retry_failed_sends_to_the_queue_the_batch_was_submitted_to()
    {
        var ct = Within(TimeSpan.FromSeconds(60));
        using var dir = new TempDir();
        var (output, batchId, broker) = await FailedBatchAsync(dir, 2, ct);
        var elsewhere = broker with { Queue = $"stylize-other-{Guid.NewGuid():N}" };
        try
        {
            (await RetryFailed.RunAsync(output, batchId, elsewhere, queueGiven: false, 1, null, ct)).ShouldBe(2);

            (await BatchTopology.CountMessagesAsync(broker, broker.Queue, ct)).ShouldBe(2u);
            (await BatchTopology.CountMessagesAsync(broker, elsewhere.Queue, ct)).ShouldBeNull();
        }
        finally
        {
            await CleanUpAsync(broker, batchId);
            await BatchTopology.DeleteWatchQueueAsync(broker, elsewhere.Queue, CancellationToken.None);
        }
    }

    private async Task<(IArchiveStore Output, string BatchId, BrokerSettings Broker)> FailedBatchAsync(TempDir dir, int count, CancellationToken ct)
    {
        var output = ArchiveStores.Open(dir.Path("out"));
        var queue = $"stylize-test-{Guid.NewGuid():N}";
        var batchId = "retry-" + queue[^8..];
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
        await output.WriteTextAsync(BatchPaths.Enqueued(batchId, "first"), JsonLines.Write(jobs.Select(j => new EnqueuedRecord { JobId = j.JobId, At = FirstFailure.AddMinutes(-1) })), ct);
        await WriteEventsAsync(output, batchId, "first", jobs.Select(j => Failure(j.JobId, FirstFailure)));
        return (output, batchId, broker);
    }

    private static Task WriteEventsAsync(IArchiveStore output, string batchId, string run, IEnumerable<OutcomeRecord> records) =>
        output.WriteTextAsync(BatchPaths.Events(batchId, run), JsonLines.Write(records), CancellationToken.None);

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
}
