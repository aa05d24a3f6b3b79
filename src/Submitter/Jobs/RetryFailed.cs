using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Storage;

namespace MambaSt.Batch.Submitter.Jobs;

/// <summary><c>retry-failed</c>: sends the failed jobs of a batch again with their ids, after marking them pending.</summary>
public static class RetryFailed
{
    public static async Task<int> RunAsync(IArchiveStore output, string batchId, BrokerSettings broker, int maxInFlight, CancellationToken cancellationToken)
    {
        var state = await BatchState.LoadAsync(output, batchId, cancellationToken);
        var failed = state.Jobs.Where(j => state.StatusOf(j.JobId) == JobStatus.Failed).ToList();
        if (failed.Count == 0) return 0;

        await BatchTopology.EnsureWatchQueueAsync(broker, batchId, cancellationToken);
        var now = DateTimeOffset.UtcNow;
        var reset = failed.Select(j => new OutcomeRecord { JobId = j.JobId, Status = JobStatus.Pending, Message = "resubmitted by retry-failed", At = now });
        await output.WriteTextAsync(BatchPaths.Events(batchId, BatchPaths.RunId()), JsonLines.Write(reset), cancellationToken);
        return await Submission.EnqueueAsync(output, state.Info with { Queue = broker.Queue }, failed, broker, maxInFlight, null, cancellationToken);
    }
}
