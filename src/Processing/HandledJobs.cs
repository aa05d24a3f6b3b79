using System.Collections.Concurrent;

namespace MambaSt.Batch.Processing;

/// <summary>
/// The messages whose failure this worker has already answered (redelivery copy sent, or failure event
/// published), so that a retry of the whole delivery batch (a later job's broker call failed) does not
/// answer them again. Keyed by message id and redelivery attempt; entries expire after
/// <see cref="Retention"/>, far longer than the batch retry's intervals. Thread-safe; one per process.
/// </summary>
public sealed class HandledJobs
{
    public static readonly TimeSpan Retention = TimeSpan.FromMinutes(10);

    private const int PruneAbove = 10_000;
    private readonly ConcurrentDictionary<(Guid MessageId, int Attempt), DateTimeOffset> _handled = new();

    public bool Contains(Guid? messageId, int attempt) =>
        messageId is { } id && _handled.TryGetValue((id, attempt), out var at) && DateTimeOffset.UtcNow - at < Retention;

    public void Add(Guid? messageId, int attempt)
    {
        if (messageId is not { } id) return;
        var now = DateTimeOffset.UtcNow;
        _handled[(id, attempt)] = now;
        if (_handled.Count <= PruneAbove) return;
        foreach (var (key, at) in _handled)
        {
            if (now - at >= Retention) _handled.TryRemove(key, out _);
        }
    }
}
