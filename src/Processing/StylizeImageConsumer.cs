using MambaSt.Batch.Contracts;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Processing;

/// <summary>
/// Consumes StylizeImage in batches. Each job gets its own outcome: ImageStylized, a queue-based
/// redelivery (transient failure, budget left), or ImageStylizationFailed (permanent failure at once;
/// transient after the budget, with a copy in the error queue). Shutdown cancellation escapes, so the
/// batch's messages return to the queue.
/// </summary>
public sealed class StylizeImageConsumer(
    StylizationPipeline pipeline,
    IJobRedelivery redelivery,
    StylizationMetrics metrics,
    IOptions<WorkerOptions> options,
    ILogger<StylizeImageConsumer> logger) : IConsumer<Batch<StylizeImage>>
{
    public async Task Consume(ConsumeContext<Batch<StylizeImage>> context)
    {
        var messages = context.Message;
        var unique = messages.Select(m => m.Message).DistinctBy(m => m.JobId).ToArray();
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["BatchSize"] = messages.Length });

        var outcomes = (await pipeline.RunAsync(unique, context.CancellationToken)).ToDictionary(o => o.Job.JobId);

        foreach (var message in messages)
        {
            var outcome = outcomes[message.Message.JobId];
            if (outcome.Completed is { } completed)
            {
                await message.Publish(completed, context.CancellationToken);
                logger.LogInformation("Job {JobId} of batch {BatchId} done: {OutputRef} ({Width}x{Height}, {TotalMs:F0} ms{Reused})",
                    completed.JobId, completed.BatchId, completed.OutputRef, completed.Width, completed.Height, completed.Timings.TotalMs,
                    completed.Reused ? ", reused" : "");
            }
            else
            {
                await HandleFailureAsync(message, outcome.Failure!, context.CancellationToken);
            }
        }
    }

    private async Task HandleFailureAsync(ConsumeContext<StylizeImage> message, JobFailedException failure, CancellationToken ct)
    {
        var attempts = redelivery.AttemptOf(message) + 1;
        if (failure.Transient && await redelivery.TryRedeliverAsync(message, failure, ct))
        {
            return;
        }

        if (failure.Transient)
        {
            await redelivery.MoveToErrorQueueAsync(message, failure, ct);
        }

        metrics.JobFailed(failure.Code, failure.Transient);
        await message.Publish(new ImageStylizationFailed
        {
            JobId = message.Message.JobId,
            BatchId = message.Message.BatchId,
            ErrorCode = failure.Code,
            Message = failure.Message,
            AttemptCount = attempts,
            Transient = failure.Transient,
            WorkerId = options.Value.WorkerId,
            CorrelationId = message.Message.CorrelationId,
            FailedAt = DateTimeOffset.UtcNow,
        }, ct);
        logger.LogWarning("Job {JobId} of batch {BatchId} failed after {Attempts} attempt(s): {ErrorCode}: {Message}",
            message.Message.JobId, message.Message.BatchId, attempts, failure.Code, failure.Message);
    }
}
