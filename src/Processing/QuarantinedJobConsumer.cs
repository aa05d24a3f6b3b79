using MambaSt.Batch.Contracts;
using MambaSt.Batch.Storage;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Processing;

/// <summary>
/// Answers the jobs the broker dead-lettered into the quarantine queue (past the job queue's
/// x-delivery-limit: each worker that took the job stopped before answering it) with one
/// ImageStylizationFailed each, code <see cref="StylizationErrorCode.Quarantined"/>, carrying the broker's
/// delivery count; unless a delivery of the job wrote its output and was stopped before announcing it (the
/// worker was killed between the write and the event): then it is answered ImageStylized (Reused), since the
/// output is there. Runs no model and reads only the output's properties, so a job that kills workers cannot
/// kill this one; if even that lookup fails, the job is answered Quarantined. The event is published before the message is acknowledged: a crash in between answers it again (at
/// least once, like every event); the message then stays in the quarantine queue's consumer only until acked.
/// </summary>
public sealed class QuarantinedJobConsumer(
    StylizationPipeline pipeline,
    StylizationMetrics metrics,
    IOptions<WorkerOptions> options,
    ILogger<QuarantinedJobConsumer> logger) : IConsumer<StylizeImage>
{
    public async Task Consume(ConsumeContext<StylizeImage> context)
    {
        var job = context.Message;
        var deliveries = DeliveryCount(context, options.Value.DeliveryLimit);
        if (await FindDoneAsync(job, context.CancellationToken) is { } done)
        {
            metrics.JobCompleted(reused: true);
            await context.Publish(done, p => p.Headers.Set(EventHeaders.BatchId, job.BatchId), context.CancellationToken);
            logger.LogWarning("Job {JobId} of batch {BatchId} reached quarantine after {Deliveries} deliveries, but its output is there: answered done",
                job.JobId, job.BatchId, deliveries);
            return;
        }

        metrics.JobFailed(StylizationErrorCode.Quarantined, false);
        await context.Publish(new ImageStylizationFailed
        {
            JobId = job.JobId,
            BatchId = job.BatchId,
            ErrorCode = StylizationErrorCode.Quarantined,
            Message = $"quarantined by the broker after {deliveries} deliveries without an answer (Worker:DeliveryLimit={options.Value.DeliveryLimit}): " +
                      "each worker that took this job stopped (crashed, was killed or timed out) before finishing it; it is not retried automatically",
            AttemptCount = deliveries,
            Transient = false,
            WorkerId = options.Value.WorkerId,
            CorrelationId = job.CorrelationId,
            FailedAt = DateTimeOffset.UtcNow,
        }, p => p.Headers.Set(EventHeaders.BatchId, job.BatchId), context.CancellationToken);
        logger.LogWarning("Job {JobId} of batch {BatchId} quarantined after {Deliveries} deliveries: {ContentRef}",
            job.JobId, job.BatchId, deliveries, StorageLocation.RedactSecrets(job.ContentRef));
    }

    private async Task<ImageStylized?> FindDoneAsync(StylizeImage job, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(OutputLookupTimeout);
        try
        {
            return await pipeline.FindDoneAsync(job, deadline.Token);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("Job {JobId} of batch {BatchId}: could not look for its output before quarantining it ({Message})",
                job.JobId, job.BatchId, StorageLocation.RedactSecrets(ex.Message));
            return null;
        }
    }

    private static readonly TimeSpan OutputLookupTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The deliveries the job had in the job queue: its x-delivery-count as dead-lettered (the broker
    /// dead-letters past the limit, so at least Worker:DeliveryLimit + 1; the quarantine queue overwrites the
    /// header if it redelivers the message itself).</summary>
    internal static int DeliveryCount(ConsumeContext context, int deliveryLimit)
    {
        var value = context.ReceiveContext.TransportHeaders.Get<object>(QueueTopology.DeliveryCountHeader);
        var counted = value switch
        {
            int i => i,
            long l => (int)l,
            byte[] b when int.TryParse(System.Text.Encoding.UTF8.GetString(b), out var p) => p,
            string s when int.TryParse(s, out var p) => p,
            _ => 0,
        };
        return Math.Max(counted, deliveryLimit + 1);
    }
}

/// <summary>The quarantine endpoint: its own queue (quorum, with the parked-message TTL), fed only by the
/// job queue's dead-lettering, never by StylizeImage publishes.</summary>
public sealed class QuarantinedJobConsumerDefinition : ConsumerDefinition<QuarantinedJobConsumer>
{
    private readonly WorkerOptions _options;

    public QuarantinedJobConsumerDefinition(IOptions<WorkerOptions> options)
    {
        _options = options.Value;
        EndpointName = QueueTopology.QuarantineQueue(_options);
        ConcurrentMessageLimit = 4;
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<QuarantinedJobConsumer> consumerConfigurator, IRegistrationContext context)
    {
        endpointConfigurator.ConfigureConsumeTopology = false;
        endpointConfigurator.PrefetchCount = 8;
        QueueTopology.Apply(endpointConfigurator, QueueTopology.QuarantineQueueArguments(_options));

        endpointConfigurator.UseMessageRetry(retry => retry.Intervals(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)));
    }
}
