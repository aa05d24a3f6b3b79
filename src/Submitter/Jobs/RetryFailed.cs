using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Storage;

namespace MambaSt.Batch.Submitter.Jobs;

/// <summary>
/// <c>retry-failed</c>: sends the failed jobs of a batch again with their ids. A job becomes pending again only when the
/// broker confirmed its send (its line in <c>enqueued-&lt;run&gt;.jsonl</c> names the failure it retries), so an
/// interrupted run leaves the jobs it did not send failed, for the next run. The jobs go to the queue the batch was
/// submitted to (<c>batch.json</c>) unless <c>queueGiven</c> says the caller chose <see cref="BrokerSettings.Queue"/>.
/// The batch is read as a <see cref="BatchTally"/>; only the job records to send are kept.
/// </summary>
public static class RetryFailed
{
    public static async Task<int> RunAsync(IArchiveStore output, string batchId, BrokerSettings broker, bool queueGiven, int maxInFlight, Action<int>? confirmed, CancellationToken cancellationToken)
    {
        var tally = await BatchTally.LoadAsync(output, batchId, cancellationToken);
        if (!queueGiven) broker = broker with { Queue = tally.Info.Queue };
        if (tally.Failed == 0) return 0;
        var failed = await JobsWhereAsync(output, batchId, tally, p => p.Status == JobStatus.Failed, cancellationToken);

        await BatchTopology.EnsureWatchQueueAsync(broker, batchId, cancellationToken);
        var retries = failed.ToDictionary(j => j.JobId, j => tally.TryGet(j.JobId, out var p) ? new DateTimeOffset(p.AtTicks, TimeSpan.Zero) : default);
        return await Submission.EnqueueAsync(output, tally.Info with { Queue = broker.Queue }, failed, broker, maxInFlight, retries, confirmed, cancellationToken);
    }

    /// <summary>The job records (streamed from <c>jobs.jsonl</c>) of the jobs whose progress <paramref name="select"/> picks.</summary>
    internal static async Task<List<JobRecord>> JobsWhereAsync(IArchiveStore output, string batchId, BatchTally tally, Func<JobProgress, bool> select, CancellationToken cancellationToken)
    {
        var jobs = new List<JobRecord>();
        var seen = new HashSet<Guid>();
        await foreach (var job in BatchRecords.ReadJobsAsync(output, batchId, new RecordIssues(), cancellationToken))
        {
            if (tally.TryGet(job.JobId, out var p) && select(p) && seen.Add(job.JobId)) jobs.Add(job);
        }

        return jobs;
    }
}

/// <summary>
/// <c>retry-pending</c>: sends again the jobs of a batch that have no outcome, whose latest confirmed send is older
/// than <c>olderThan</c> (or that the broker never confirmed). Their message may have been lost (a broker crash while
/// dead-lettering, a fault that outlasted the worker's retries and went to an error queue), or may still be queued:
/// sending again is safe either way, since the worker writes outputs create-if-absent with metadata and reuses an
/// output that names the job. Each confirmed send restarts the job's pending clock.
/// </summary>
public static class RetryPending
{
    public static async Task<int> RunAsync(IArchiveStore output, string batchId, BrokerSettings broker, bool queueGiven, TimeSpan olderThan, int maxInFlight,
        Action<int>? confirmed, CancellationToken cancellationToken, DateTimeOffset? now = null)
    {
        var tally = await BatchTally.LoadAsync(output, batchId, cancellationToken);
        if (!queueGiven) broker = broker with { Queue = tally.Info.Queue };
        if (tally.Pending == 0) return 0;
        var cutoff = (now ?? DateTimeOffset.UtcNow) - olderThan;
        var stale = await RetryFailed.JobsWhereAsync(output, batchId, tally,
            p => p.Status == JobStatus.Pending && (p.LastSentTicks == 0 || p.LastSentTicks <= cutoff.UtcTicks), cancellationToken);
        if (stale.Count == 0) return 0;

        await BatchTopology.EnsureWatchQueueAsync(broker, batchId, cancellationToken);
        return await Submission.EnqueueAsync(output, tally.Info with { Queue = broker.Queue }, stale, broker, maxInFlight, null, confirmed, cancellationToken);
    }
}
