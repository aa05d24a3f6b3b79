using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Storage;

namespace MambaSt.Batch.Submitter.Jobs;

/// <summary>
/// <c>retry-failed</c>: sends the failed jobs of a batch again with their ids. A job becomes pending again only when the
/// broker confirmed its send (its line in <c>enqueued-&lt;run&gt;.jsonl</c> names the failure it retries), so an
/// interrupted run leaves the jobs it did not send failed, for the next run. The jobs go to the queue the batch was
/// submitted to (<c>batch.json</c>) unless <c>queueGiven</c> says the caller chose <see cref="BrokerSettings.Queue"/>.
/// </summary>
public static class RetryFailed
{
    public static async Task<int> RunAsync(IArchiveStore output, string batchId, BrokerSettings broker, bool queueGiven, int maxInFlight, Action<int>? confirmed, CancellationToken cancellationToken)
    {
        var state = await BatchState.LoadAsync(output, batchId, cancellationToken);
        if (!queueGiven) broker = broker with { Queue = state.Info.Queue };
        var failed = state.Jobs.Where(j => state.StatusOf(j.JobId) == JobStatus.Failed).ToList();
        if (failed.Count == 0) return 0;

        await BatchTopology.EnsureWatchQueueAsync(broker, batchId, cancellationToken);
        var retries = failed.ToDictionary(j => j.JobId, j => state.Outcomes[j.JobId].At);
        return await Submission.EnqueueAsync(output, state.Info with { Queue = broker.Queue }, failed, broker, maxInFlight, retries, confirmed, cancellationToken);
    }
}
