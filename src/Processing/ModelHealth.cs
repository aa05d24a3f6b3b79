using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Processing;

/// <summary>
/// Whether this worker's model still works, and whether the process still makes progress. After
/// Worker:UnreadyAfterModelFailures consecutive failed model runs the worker is not ready: the consumer stops
/// taking batches (<see cref="WaitReadyAsync"/>) until a run succeeds again (the probe in the worker host runs
/// one on a synthetic image), so a pod whose model always fails stops draining the queue into failures.
/// A batch held longer than Worker:WedgedAfterSeconds (inference that never returns, a wedged device) makes
/// the process not live. Thread-safe; one per process.
/// </summary>
public sealed class ModelHealth(IOptions<WorkerOptions> options)
{
    private readonly WorkerOptions _options = options.Value;
    private readonly ConcurrentDictionary<long, long> _batches = new();
    private readonly object _gate = new();
    private TaskCompletionSource _ready = Completed();
    private int _consecutiveFailures;
    private long _nextBatch;

    public bool Ready
    {
        get
        {
            lock (_gate) return _consecutiveFailures < _options.UnreadyAfterModelFailures;
        }
    }

    public int ConsecutiveFailures
    {
        get
        {
            lock (_gate) return _consecutiveFailures;
        }
    }

    public void RunSucceeded()
    {
        lock (_gate)
        {
            _consecutiveFailures = 0;
            _ready.TrySetResult();
        }
    }

    public void RunFailed()
    {
        lock (_gate)
        {
            _consecutiveFailures++;
            if (_consecutiveFailures == _options.UnreadyAfterModelFailures) _ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>Completes at once while ready; otherwise when a model run succeeds again.</summary>
    public Task WaitReadyAsync(CancellationToken cancellationToken)
    {
        Task ready;
        lock (_gate) ready = _ready.Task;
        return ready.IsCompleted ? Task.CompletedTask : ready.WaitAsync(cancellationToken);
    }

    /// <summary>Marks a batch as held until disposed.</summary>
    public IDisposable BatchInHand()
    {
        var id = Interlocked.Increment(ref _nextBatch);
        _batches[id] = Stopwatch.GetTimestamp();
        return new Release(() => _batches.TryRemove(id, out _));
    }

    /// <summary>How long the oldest batch in hand has been held; zero when none.</summary>
    public TimeSpan OldestBatchAge => _batches.IsEmpty ? TimeSpan.Zero : Stopwatch.GetElapsedTime(_batches.Values.Min());

    public bool Wedged => OldestBatchAge > TimeSpan.FromSeconds(_options.WedgedAfterSeconds);

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        done.SetResult();
        return done;
    }

    private sealed class Release(Action release) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) release();
        }
    }
}
