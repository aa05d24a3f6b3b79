using MambaSt.Batch.Contracts;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Processing;

/// <summary>
/// Runs the jobs of the isolation queue (<see cref="QueueTopology.IsolationQueue"/>) one at a time, each as a batch
/// of one through <see cref="StylizeImageConsumer"/>: same outcomes, redeliveries and events. These are jobs a
/// worker was holding when it stopped; one of them may be what stopped it, and here it can only take itself
/// down. Past the isolation queue's own delivery limit the broker quarantines it (<see cref="QuarantinedJobConsumer"/>).
/// </summary>
public sealed class IsolatedJobConsumer(StylizeImageConsumer jobs) : IConsumer<StylizeImage>
{
    public Task Consume(ConsumeContext<StylizeImage> context) => jobs.ConsumeAloneAsync(context);
}

/// <summary>The isolation endpoint: one message in hand per worker (prefetch 1, one at a time), the job queue's
/// arguments, fed only by <see cref="IJobRedelivery.TryIsolateAsync"/>, never by StylizeImage publishes.</summary>
public sealed class IsolatedJobConsumerDefinition : ConsumerDefinition<IsolatedJobConsumer>
{
    private readonly WorkerOptions _options;

    public IsolatedJobConsumerDefinition(IOptions<WorkerOptions> options)
    {
        _options = options.Value;
        EndpointName = QueueTopology.IsolationQueue(_options);
        ConcurrentMessageLimit = 1;
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<IsolatedJobConsumer> consumerConfigurator, IRegistrationContext context)
    {
        endpointConfigurator.ConfigureConsumeTopology = false;
        endpointConfigurator.PrefetchCount = 1;
        QueueTopology.Apply(endpointConfigurator, QueueTopology.IsolationQueueArguments(_options));

        // As on the batch endpoint: the retry's attempt number tells the consumer when to answer a faulted job itself.
        consumerConfigurator.UseMessageRetry(retry =>
        {
            retry.Intervals(_options.EffectiveBatchRetryDelays.Select(ms => TimeSpan.FromMilliseconds(ms)).ToArray());
            retry.Ignore<OperationCanceledException>();
        });
    }
}

/// <summary>
/// On the job endpoint, ahead of the batch: a StylizeImage the broker redelivered goes to the isolation queue and
/// is acknowledged at once, alone, instead of joining a batch whose other messages it could take down again. If
/// its copy cannot be published it joins the batch as before (isolation is best effort; the delivery limit
/// still bounds it).
/// </summary>
public sealed class IsolateRedeliveredFilter(IJobRedelivery redelivery, ILogger logger) : IFilter<ConsumeContext>
{
    public async Task Send(ConsumeContext context, IPipe<ConsumeContext> next)
    {
        if (context.ReceiveContext.Redelivered && context.TryGetMessage<StylizeImage>(out var job))
        {
            try
            {
                if (await redelivery.TryIsolateAsync(job, context.CancellationToken))
                {
                    await context.NotifyConsumed(job, TimeSpan.Zero, nameof(IsolateRedeliveredFilter));
                    return;
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Job {JobId} of batch {BatchId}: redelivered, but its copy for the isolation queue failed; it runs in a batch",
                    job.Message.JobId, job.Message.BatchId);
            }
        }

        await next.Send(context);
    }

    public void Probe(ProbeContext context) => context.CreateFilterScope("isolate-redelivered");
}
