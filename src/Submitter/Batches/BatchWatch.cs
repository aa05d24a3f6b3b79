using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Storage;

using MassTransit;

using Spectre.Console;

namespace MambaSt.Batch.Submitter.Batches;

public sealed record WatchResult(int Total, int Done, int Failed, int Pending, bool Completed);

/// <summary>
/// <c>watch</c>: consumes the batch's own event queue, shows progress and records each outcome in
/// <c>events-&lt;run&gt;.jsonl</c> beside the batch manifest. An event is acknowledged only after
/// the file that records it has been written (at most <see cref="FlushAfter"/> later, or as soon
/// as <see cref="FlushBatch"/> events wait); when that write fails, or the watch stops first, its
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
    private static async Task<bool> AnyPendingAgainAsync(IArchiveStore output, string batchId, CancellationToken cancellationToken)
    {
        var now = await BatchState.LoadAsync(output, batchId, cancellationToken);
        return now.Jobs.Any(j => now.StatusOf(j.JobId) == JobStatus.Pending);
    }

    public async Task<WatchResult> RunAsync(IArchiveStore output, string batchId, BrokerSettings broker, bool keepQueue, CancellationToken cancellationToken)
    {
        var state = await BatchState.LoadAsync(output, batchId, cancellationToken);
        var jobIds = state.Jobs.Select(j => j.JobId).ToHashSet();
        var outcomes = state.Outcomes;
        var runFile = BatchPaths.Events(batchId, BatchPaths.RunId());
        var recorded = new List<OutcomeRecord>();
        var flushed = 0;

        var unknown = state.Jobs.Where(j => state.StatusOf(j.JobId) == JobStatus.Pending).ToList();
        await Parallel.ForEachAsync(unknown, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (job, ct) =>
        {
            if (!await output.ExistsAsync(job.OutputPath, ct)) return;
            lock (recorded) recorded.Add(new OutcomeRecord { JobId = job.JobId, Status = JobStatus.Done, OutputRef = job.OutputRef, Message = "output present", At = DateTimeOffset.UtcNow });
        });
        foreach (var r in recorded) BatchState.Merge(outcomes, r);

        int Settled() => jobIds.Count(id => outcomes.TryGetValue(id, out var o) && o.Status != JobStatus.Pending);
        int FailedCount() => jobIds.Count(id => outcomes.TryGetValue(id, out var o) && o.Status == JobStatus.Failed);

        if (Settled() < jobIds.Count)
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
                await ShowProgressAsync(events.Reader, unacked, Record, Flush, Settled, FailedCount, jobIds.Count, cancellationToken);
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
                if (unacked.Count == 0 && recorded.Count == flushed) return;
                await output.WriteTextAsync(runFile, JsonLines.Write(recorded), ct);
                flushed = recorded.Count;
                foreach (var waiting in unacked) waiting.TrySetResult();
                unacked.Clear();
            }

            if (Settled() == jobIds.Count && !keepQueue && !await AnyPendingAgainAsync(output, batchId, cancellationToken))
            {
                await BatchTopology.DeleteWatchQueueIfIdleAsync(broker, queue, CancellationToken.None);
            }
        }
        else if (recorded.Count > 0)
        {
            await output.WriteTextAsync(runFile, JsonLines.Write(recorded), cancellationToken);
        }

        var failed = FailedCount();
        var settled = Settled();
        return new WatchResult(jobIds.Count, settled - failed, failed, jobIds.Count - settled, settled == jobIds.Count);

        void Record(OutcomeRecord record)
        {
            if (!jobIds.Contains(record.JobId)) return;
            recorded.Add(record);
            BatchState.Merge(outcomes, record);
        }
    }

    private async Task ShowProgressAsync(ChannelReader<Arrival> events, List<TaskCompletionSource> unacked, Action<OutcomeRecord> record,
        Func<CancellationToken, Task> flush, Func<int> settled, Func<int> failed, int total, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var startSettled = settled();
        TimeSpan? oldestWaiting = null;
        await console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask("waiting for events", maxValue: Math.Max(1, total));
                while (true)
                {
                    var s = settled();
                    var f = failed();
                    var rate = (s - startSettled) / Math.Max(0.001, clock.Elapsed.TotalSeconds);
                    task.Value = s;
                    task.Description = $"done {s - f}  failed {f}  pending {total - s}  {rate:F1} img/s";
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
}
