using MambaSt.Batch.Contracts;
using MambaSt.Batch.Storage;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Processing;

/// <summary>
/// Consumes StylizeImage in batches. Each job gets its own outcome: ImageStylized, a queue-based
/// redelivery (transient failure, budget left), or ImageStylizationFailed (permanent failure at once;
/// transient after the budget, with a copy in the error queue). Copies of one job (same JobId, OutputRef
/// and BatchId: a publisher's retry) in one batch are run and answered once; the same JobId for another
/// output or batch is a job of its own. Failures are handled before successes are announced, so a
/// redelivery that cannot be published (broker gone) faults the batch before any ImageStylized went out;
/// the batch retry that follows skips the jobs whose failure was already answered (<see cref="HandledJobs"/>),
/// so their redelivery copies and failure events are not sent twice.
/// A fault of the whole batch that outlasts Worker:BatchRetryDelaysMs still ends in one event per job
/// (<see cref="AnswerBatchFaultAsync"/>), so nothing stays pending in the error queue without an outcome.
/// A message the broker redelivered (a worker stopped while holding it, perhaps killed by one of its batch
/// mates) never reaches a batch: <see cref="IsolateRedeliveredFilter"/> moves it to the isolation queue, where
/// it runs alone (<see cref="ConsumeAloneAsync"/>), so a job that kills workers reaches the delivery limit
/// without its batch mates.
/// Every event carries the transport header <see cref="BatchIdHeader"/> (the batch's watch queue
/// routes on it). Shutdown cancellation escapes, so the batch's messages return to the queue.
/// </summary>
public sealed class StylizeImageConsumer(
    StylizationPipeline pipeline,
    IJobRedelivery redelivery,
    StylizationMetrics metrics,
    HandledJobs handled,
    IOptions<WorkerOptions> options,
    ILogger<StylizeImageConsumer> logger,
    ModelHealth? health = null) : IConsumer<Batch<StylizeImage>>
{
    /// <summary>Transport header on every ImageStylized / ImageStylizationFailed: the job's BatchId.</summary>
    public const string BatchIdHeader = EventHeaders.BatchId;

    public Task Consume(ConsumeContext<Batch<StylizeImage>> context) => RunAsync([.. context.Message], context);

    /// <summary>A job of the isolation queue (<see cref="IsolatedJobConsumer"/>): run alone, so if it kills the
    /// worker it takes nothing else with it.</summary>
    public Task ConsumeAloneAsync(ConsumeContext<StylizeImage> context) => RunAsync([context], context);

    private async Task RunAsync(IReadOnlyList<ConsumeContext<StylizeImage>> messages, ConsumeContext context)
    {
        // A model that keeps failing would turn the whole queue into failures: wait for a probe run to succeed.
        if (health is not null) await health.WaitReadyAsync(context.CancellationToken);
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["BatchSize"] = messages.Count });

        var copies = messages.GroupBy(m => (m.Message.JobId, m.Message.OutputRef, m.Message.BatchId)).ToArray();
        foreach (var group in copies.Where(g => g.Count() > 1))
        {
            logger.LogInformation("Job {JobId} of batch {BatchId}: {Copies} copies in one delivery batch; run and answered once",
                group.Key.JobId, group.Key.BatchId, group.Count());
        }

        var jobs = copies.Select(g => g.First()).Where(m => !AlreadyAnswered(m)).ToArray();
        if (jobs.Length == 0) return;
        var outcomes = new JobOutcome?[jobs.Length];
        var answered = new bool[jobs.Length];
        try
        {
            var results = await pipeline.RunAsync(jobs.Select(m => m.Message).ToArray(), context.CancellationToken);
            if (results.Count != jobs.Length)
            {
                throw new InvalidOperationException($"the pipeline returned {results.Count} outcomes for {jobs.Length} jobs");
            }

            for (var i = 0; i < jobs.Length; i++) outcomes[i] = results[i];
            for (var i = 0; i < jobs.Length; i++)
            {
                if (results[i].Failure is { } failure)
                {
                    await HandleFailureAsync(jobs[i], failure, context.CancellationToken);
                    answered[i] = true;
                }
            }

            for (var i = 0; i < jobs.Length; i++)
            {
                if (results[i].Completed is { } completed)
                {
                    await PublishCompletedAsync(jobs[i], completed, context.CancellationToken);
                    answered[i] = true;
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException && context.GetRetryAttempt() >= options.Value.EffectiveBatchRetryDelays.Count)
        {
            await AnswerBatchFaultAsync(jobs, outcomes, answered, ex, context);
        }
    }

    private async Task PublishCompletedAsync(ConsumeContext<StylizeImage> job, ImageStylized completed, CancellationToken ct)
    {
        await job.Publish(completed, WithBatchHeader<ImageStylized>(completed.BatchId), ct);
        logger.LogInformation("Job {JobId} of batch {BatchId} done: {OutputRef} ({Width}x{Height}, {TotalMs:F0} ms{Reused})",
            completed.JobId, completed.BatchId, StorageLocation.RedactSecrets(completed.OutputRef), completed.Width, completed.Height, completed.Timings.TotalMs,
            completed.Reused ? ", reused" : "");
    }

    /// <summary>The batch faulted on its last try (Worker:BatchRetryDelaysMs spent): rather than leave its jobs
    /// in the error queue with no event (pending forever for the submitter), answer each job still unanswered:
    /// done ones with ImageStylized, the rest with ImageStylizationFailed (transient: submitting again may
    /// succeed). If even that cannot be published the fault escapes as before (error queue).</summary>
    private async Task AnswerBatchFaultAsync(ConsumeContext<StylizeImage>[] jobs, JobOutcome?[] outcomes, bool[] answered,
        Exception fault, ConsumeContext context)
    {
        var tries = context.GetRetryAttempt() + 1;
        logger.LogError(fault, "Delivery batch of {Count} job(s) faulted on its last try ({Tries}); answering each unanswered job", jobs.Length, tries);
        var classified = ErrorClassifier.Classify(fault);
        try
        {
            for (var i = 0; i < jobs.Length; i++)
            {
                if (answered[i]) continue;
                if (outcomes[i]?.Completed is { } completed)
                {
                    await PublishCompletedAsync(jobs[i], completed, CancellationToken.None);
                    continue;
                }

                var cause = outcomes[i]?.Failure;
                var failure = new JobFailedException(cause?.Code ?? classified.Code, cause?.Transient ?? true,
                    $"the worker could not finish answering this job ({tries} tries of its delivery batch): {fault.Message}" +
                    (cause is null ? "" : $"; the job itself failed with {cause.Code}: {cause.Message}"));
                await PublishFailedAsync(jobs[i], failure, redelivery.AttemptOf(jobs[i]) + 1, CancellationToken.None);
            }
        }
        catch (Exception publishFault)
        {
            logger.LogError(publishFault, "Could not answer the jobs of a faulted delivery batch; it goes to the error queue");
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(fault);
        }
    }

    private bool AlreadyAnswered(ConsumeContext<StylizeImage> message)
    {
        if (!handled.Contains(message.MessageId, message.Message, redelivery.AttemptOf(message))) return false;
        logger.LogInformation("Job {JobId} of batch {BatchId}: its failure was answered before this batch was retried; skipped",
            message.Message.JobId, message.Message.BatchId);
        return true;
    }

    private static IPipe<PublishContext<T>> WithBatchHeader<T>(string batchId)
        where T : class =>
        Pipe.Execute<PublishContext<T>>(p => p.Headers.Set(BatchIdHeader, batchId));

    private async Task HandleFailureAsync(ConsumeContext<StylizeImage> message, JobFailedException failure, CancellationToken ct)
    {
        var attempts = redelivery.AttemptOf(message) + 1;
        failure = SettleDecodeTimeout(failure, attempts);
        if (failure.Transient && await redelivery.TryRedeliverAsync(message, failure, ct))
        {
            handled.Add(message.MessageId, message.Message, attempts - 1);
            return;
        }

        if (failure.Transient)
        {
            await redelivery.MoveToErrorQueueAsync(message, failure, ct);
        }

        await PublishFailedAsync(message, failure, attempts, ct);
    }

    /// <summary>A decode that ran out of its time budget may have met a busy machine once; twice, it is the image
    /// (a decompression bomb, a pathological file): permanent, so it costs two budgets of CPU, not five.</summary>
    internal static JobFailedException SettleDecodeTimeout(JobFailedException failure, int attempts) =>
        failure is { Transient: true, InnerException: MambaSt.Batch.Imaging.ImageException { Kind: MambaSt.Batch.Imaging.ImageErrorKind.Timeout } } && attempts >= 2
            ? new JobFailedException(failure.Code, false, $"{failure.Message} (the decoder used its full time budget on {attempts} deliveries; not retried again)", failure.InnerException)
            : failure;

    private async Task PublishFailedAsync(ConsumeContext<StylizeImage> message, JobFailedException failure, int attempts, CancellationToken ct)
    {
        metrics.JobFailed(failure.Code, failure.Transient);
        await message.Publish(new ImageStylizationFailed
        {
            JobId = message.Message.JobId,
            BatchId = message.Message.BatchId,
            ErrorCode = failure.Code,
            Message = StorageLocation.RedactSecrets(failure.Message),
            AttemptCount = attempts,
            Transient = failure.Transient,
            WorkerId = options.Value.WorkerId,
            CorrelationId = message.Message.CorrelationId,
            FailedAt = DateTimeOffset.UtcNow,
        }, WithBatchHeader<ImageStylizationFailed>(message.Message.BatchId), ct);
        handled.Add(message.MessageId, message.Message, attempts - 1);
        logger.LogWarning("Job {JobId} of batch {BatchId} failed after {Attempts} attempt(s): {ErrorCode}: {Message}",
            message.Message.JobId, message.Message.BatchId, attempts, failure.Code, StorageLocation.RedactSecrets(failure.Message));
    }
}
