using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Storage;

using MassTransit;

using Spectre.Console;

namespace MambaSt.Batch.Submitter.Batches;

public sealed record WatchResult(int Total, int Done, int Failed, int Pending, bool Completed)
{
    /// <summary>How long the longest-waiting pending job has waited since its latest confirmed send (null when none).</summary>
    public TimeSpan? OldestPending { get; init; }

    /// <summary>Malformed record lines skipped while loading the batch (a warning, with places).</summary>
    public string? RecordWarning { get; init; }

    /// <summary>Jobs whose output exists but was made for another job, style, options or model: they are not done.</summary>
    public IReadOnlyList<string> Mismatches { get; init; } = [];

    public int MismatchCount { get; init; }
}

/// <summary>
/// <c>watch</c>: consumes the batch's own event queue, shows progress and records each outcome in
/// <c>events-&lt;run&gt;.jsonl</c> beside the batch manifest. An event is acknowledged only after
/// the append that records it is durable (at most <see cref="FlushAfter"/> later, or as soon
/// as <see cref="FlushBatch"/> events wait); each append writes only the new lines (a flush costs what
/// it adds, not the size of the record) and the batch is held as a <see cref="BatchTally"/> (memory
/// bounded by the number of jobs, not of events). When that append fails, or the watch stops first, its
/// events go back to the queue (nack with requeue) for the next watch: a crash or a storage outage
/// loses no outcome. Events of other batches are acknowledged and ignored. Ends when every job has
/// an outcome.
/// </summary>
public sealed class BatchWatch(IAnsiConsole console)
{
    /// <summary>Longest time an event waits for the write that records it (and for its ack).</summary>
    public static readonly TimeSpan FlushAfter = TimeSpan.FromMilliseconds(500);

    /// <summary>Events waiting that force a write at once (the queue's prefetch is twice this).</summary>
    public const int FlushBatch = 128;

    private sealed record Arrival(OutcomeRecord Record, TaskCompletionSource Persisted);

    /// <summary>Whether a job became pending again while this watch ran (retry-failed sent it again): its outcome
    /// is still to come through the batch queue, so the queue stays.</summary>
    private static async Task<bool> AnyPendingAgainAsync(IArchiveStore output, string batchId, CancellationToken cancellationToken) =>
        (await BatchTally.LoadAsync(output, batchId, cancellationToken)).Pending > 0;

    public async Task<WatchResult> RunAsync(IArchiveStore output, string batchId, BrokerSettings broker, bool keepQueue, CancellationToken cancellationToken)
    {
        var tally = await BatchTally.LoadAsync(output, batchId, cancellationToken);
        var log = new RecordLog<OutcomeRecord>(output, BatchPaths.Events(batchId, BatchPaths.RunId()));
        var toAppend = new List<OutcomeRecord>();

        var present = await ExistingOutputs.FindDoneAsync(output, batchId, tally, cancellationToken);
        foreach (var r in present.Done) Record(r);
        var mismatches = present.Mismatches;

        if (tally.Settled < tally.Total)
        {
            var queue = BatchPaths.WatchQueue(batchId);
            var expires = await BatchTopology.EnsureWatchQueueAsync(broker, batchId, cancellationToken);
            var events = Channel.CreateUnbounded<Arrival>();
            Task Arrive(string? eventBatch, Func<OutcomeRecord> record)
            {
                if (eventBatch != batchId) return Task.CompletedTask;
                var persisted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                return events.Writer.TryWrite(new Arrival(record(), persisted))
                    ? persisted.Task
                    : Task.FromException(new InvalidOperationException("watch is stopping; the event goes back to the queue"));
            }

            var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
            {
                cfg.Host(BatchTopology.ToMassTransit(broker.Url));
                cfg.ReceiveEndpoint(queue, e =>
                {
                    // The queue and its header binding are BatchTopology's: no fanout bindings from the event
                    // exchanges (they would bring every batch's events), and the same arguments as declared.
                    e.ConfigureConsumeTopology = false;
                    e.BindQueue = false;
                    if (expires)
                    {
                        foreach (var (key, value) in BatchTopology.WatchQueueArguments()) e.SetQueueArgument(key, value);
                    }

                    e.PrefetchCount = 2 * FlushBatch;
                    e.ConcurrentMessageLimit = 2 * FlushBatch;
                    e.PublishFaults = false;
                    e.RethrowFaultedMessages(); // an unrecorded event is requeued, never moved to an error queue
                    e.Handler<ImageStylized>(ctx => Arrive(ctx.Message.BatchId, () => OutcomeRecord.From(ctx.Message)));
                    e.Handler<ImageStylizationFailed>(ctx => Arrive(ctx.Message.BatchId, () => OutcomeRecord.From(ctx.Message)));
                });
            });

            using var startTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            startTimeout.CancelAfter(TimeSpan.FromSeconds(30));
            try
            {
                await bus.StartAsync(startTimeout.Token);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                await bus.StopAsync(CancellationToken.None);
                throw new UnreachableException($"RabbitMQ at {broker.Display} is unreachable: {ex.GetBaseException().Message}", ex);
            }

            var unacked = new List<TaskCompletionSource>();
            try
            {
                await ShowProgressAsync(events.Reader, unacked, Record, Flush, tally, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
            finally
            {
                // No arrival after this point: later events are nacked and stay queued.
                events.Writer.TryComplete();
                while (events.Reader.TryRead(out var late))
                {
                    Record(late.Record);
                    unacked.Add(late.Persisted);
                }

                Exception? failure = null;
                try
                {
                    await Flush(CancellationToken.None);
                }
                catch (Exception ex)
                {
                    failure = ex;
                    foreach (var waiting in unacked) waiting.TrySetException(ex); // nacked: back to the queue
                    unacked.Clear();
                }

                await bus.StopAsync(CancellationToken.None);
                if (failure is not null) ExceptionDispatchInfo.Throw(failure);
            }

            async Task Flush(CancellationToken ct)
            {
                if (unacked.Count == 0 && toAppend.Count == 0) return;
                await log.AppendAsync(toAppend, ct); // acked only once the lines are durable
                toAppend.Clear();
                foreach (var waiting in unacked) waiting.TrySetResult();
                unacked.Clear();
            }

            if (tally.Settled == tally.Total && !keepQueue && !await AnyPendingAgainAsync(output, batchId, cancellationToken))
            {
                await BatchTopology.DeleteWatchQueueIfIdleAsync(broker, queue, CancellationToken.None);
            }
        }
        else
        {
            await log.AppendAsync(toAppend, cancellationToken);
        }

        return new WatchResult(tally.Total, tally.Done, tally.Failed, tally.Pending, tally.Settled == tally.Total)
        {
            OldestPending = tally.Pending > 0 ? tally.OldestPending(DateTimeOffset.UtcNow) : null,
            RecordWarning = tally.Issues.Summary,
            Mismatches = mismatches,
            MismatchCount = present.MismatchCount,
        };

        void Record(OutcomeRecord record)
        {
            // A failed append keeps its lines here: the next append writes them again with the newer ones.
            if (tally.Merge(record)) toAppend.Add(record);
        }
    }

    private async Task ShowProgressAsync(ChannelReader<Arrival> events, List<TaskCompletionSource> unacked, Action<OutcomeRecord> record,
        Func<CancellationToken, Task> flush, BatchTally tally, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var total = tally.Total;
        var startSettled = tally.Settled;
        var oldest = tally.OldestPending(DateTimeOffset.UtcNow);
        var oldestAt = clock.Elapsed;
        TimeSpan? oldestWaiting = null;
        await console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask("waiting for events", maxValue: Math.Max(1, total));
                while (true)
                {
                    var s = tally.Settled;
                    var f = tally.Failed;
                    var rate = (s - startSettled) / Math.Max(0.001, clock.Elapsed.TotalSeconds);
                    if (clock.Elapsed - oldestAt > TimeSpan.FromSeconds(10))
                    {
                        // A scan of the compact table: cheap, but not for every tick at a million jobs.
                        oldest = tally.OldestPending(DateTimeOffset.UtcNow);
                        oldestAt = clock.Elapsed;
                    }

                    task.Value = s;
                    task.Description = $"done {s - f}  failed {f}  pending {total - s}{(oldest is { } o && total > s ? $" (oldest {Age(o + (clock.Elapsed - oldestAt))})" : "")}  {rate:F1} img/s";
                    if (s >= total) break;

                    if (unacked.Count > 0 && (unacked.Count >= FlushBatch || clock.Elapsed - oldestWaiting >= FlushAfter))
                    {
                        await flush(cancellationToken);
                        oldestWaiting = null;
                    }

                    using var tick = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    tick.CancelAfter(oldestWaiting is { } since ? Max(TimeSpan.FromMilliseconds(10), FlushAfter - (clock.Elapsed - since)) : TimeSpan.FromMilliseconds(500));
                    try
                    {
                        Add(await events.ReadAsync(tick.Token));
                        while (unacked.Count < FlushBatch && events.TryRead(out var more)) Add(more);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                    }

                    ctx.Refresh();
                }
            });

        void Add(Arrival arrival)
        {
            record(arrival.Record);
            unacked.Add(arrival.Persisted);
            oldestWaiting ??= clock.Elapsed;
        }

        static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
    }

    /// <summary>A wait as an operator reads it: 45s, 12m, 3h05m, 2d04h.</summary>
    public static string Age(TimeSpan t) => t.TotalMinutes < 1 ? $"{(int)t.TotalSeconds}s"
        : t.TotalHours < 1 ? $"{(int)t.TotalMinutes}m"
        : t.TotalDays < 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m"
        : $"{(int)t.TotalDays}d{t.Hours:D2}h";
}
