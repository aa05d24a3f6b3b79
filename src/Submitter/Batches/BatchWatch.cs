using System.Diagnostics;
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
/// <c>events-&lt;run&gt;.jsonl</c> beside the batch manifest (flushed every 2 s and at the end).
/// Events of other batches are acknowledged and ignored. Ends when every job has an outcome.
/// </summary>
public sealed class BatchWatch(IAnsiConsole console)
{
    public async Task<WatchResult> RunAsync(IArchiveStore output, string batchId, BrokerSettings broker, bool keepQueue, CancellationToken cancellationToken)
    {
        var state = await BatchState.LoadAsync(output, batchId, cancellationToken);
        var jobIds = state.Jobs.Select(j => j.JobId).ToHashSet();
        var outcomes = state.Outcomes;
        var runFile = BatchPaths.Events(batchId, BatchPaths.RunId());
        var recorded = new List<OutcomeRecord>();

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
            await BatchTopology.EnsureWatchQueueAsync(broker, queue, cancellationToken);
            var events = Channel.CreateUnbounded<OutcomeRecord>();
            var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
            {
                cfg.Host(BatchTopology.ToMassTransit(broker.Url));
                cfg.ReceiveEndpoint(queue, e =>
                {
                    e.PrefetchCount = 256;
                    e.Handler<ImageStylized>(ctx =>
                    {
                        if (ctx.Message.BatchId == batchId) events.Writer.TryWrite(OutcomeRecord.From(ctx.Message));
                        return Task.CompletedTask;
                    });
                    e.Handler<ImageStylizationFailed>(ctx =>
                    {
                        if (ctx.Message.BatchId == batchId) events.Writer.TryWrite(OutcomeRecord.From(ctx.Message));
                        return Task.CompletedTask;
                    });
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

            try
            {
                await ShowProgressAsync(events.Reader, jobIds, outcomes, recorded, Settled, FailedCount, output, runFile, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
            finally
            {
                await bus.StopAsync(CancellationToken.None);
                while (events.Reader.TryRead(out var late)) Record(late);
                if (recorded.Count > 0) await output.WriteTextAsync(runFile, JsonLines.Write(recorded), CancellationToken.None);
            }

            if (Settled() == jobIds.Count && !keepQueue)
            {
                await BatchTopology.DeleteWatchQueueAsync(broker, queue, CancellationToken.None);
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

    private async Task ShowProgressAsync(ChannelReader<OutcomeRecord> events, HashSet<Guid> jobIds, Dictionary<Guid, OutcomeRecord> outcomes,
        List<OutcomeRecord> recorded, Func<int> settled, Func<int> failed, IArchiveStore output, string runFile, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var startSettled = settled();
        var lastFlush = clock.Elapsed;
        var flushedCount = recorded.Count;
        await console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask("waiting for events", maxValue: Math.Max(1, jobIds.Count));
                while (true)
                {
                    var s = settled();
                    var f = failed();
                    var rate = (s - startSettled) / Math.Max(0.001, clock.Elapsed.TotalSeconds);
                    task.Value = s;
                    task.Description = $"done {s - f}  failed {f}  pending {jobIds.Count - s}  {rate:F1} img/s";
                    if (s >= jobIds.Count) break;

                    if (recorded.Count != flushedCount && clock.Elapsed - lastFlush > TimeSpan.FromSeconds(2))
                    {
                        await output.WriteTextAsync(runFile, JsonLines.Write(recorded), cancellationToken);
                        flushedCount = recorded.Count;
                        lastFlush = clock.Elapsed;
                    }

                    using var tick = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    tick.CancelAfter(TimeSpan.FromMilliseconds(500));
                    try
                    {
                        var record = await events.ReadAsync(tick.Token);
                        Add(record);
                        while (events.TryRead(out var more)) Add(more);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                    }

                    ctx.Refresh();
                }
            });

        void Add(OutcomeRecord record)
        {
            if (!jobIds.Contains(record.JobId)) return;
            recorded.Add(record);
            BatchState.Merge(outcomes, record);
        }
    }
}
