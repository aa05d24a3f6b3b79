using System.Collections.Concurrent;
using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Processing;

/// <summary>
/// The messages whose failure this worker has already answered (redelivery copy sent, or failure event
/// published), so that a retry of the whole delivery batch (a later job's broker call failed) does not
/// answer them again. Keyed by message id and redelivery attempt; a message without an id (a publisher that
/// sets none) by its job (JobId, OutputRef, BatchId: what makes a job distinct for the consumer). Entries
/// expire after <see cref="Retention"/>, far longer than the batch retry's intervals. Thread-safe; one per process.
/// </summary>
public sealed class HandledJobs
{
    public static readonly TimeSpan Retention = TimeSpan.FromMinutes(10);

    private const int PruneAbove = 10_000;
    private readonly ConcurrentDictionary<(string Key, int Attempt), DateTimeOffset> _handled = new();

    public bool Contains(Guid? messageId, StylizeImage job, int attempt) =>
        _handled.TryGetValue((KeyOf(messageId, job), attempt), out var at) && DateTimeOffset.UtcNow - at < Retention;

    public void Add(Guid? messageId, StylizeImage job, int attempt)
    {
        var now = DateTimeOffset.UtcNow;
        _handled[(KeyOf(messageId, job), attempt)] = now;
        if (_handled.Count <= PruneAbove) return;
        foreach (var (key, at) in _handled)
        {
            if (now - at >= Retention) _handled.TryRemove(key, out _);
        }
    }

    private static string KeyOf(Guid? messageId, StylizeImage job) =>
        messageId is { } id ? id.ToString("N") : $"job:{job.JobId:N}\n{job.OutputRef}\n{job.BatchId}";
}
