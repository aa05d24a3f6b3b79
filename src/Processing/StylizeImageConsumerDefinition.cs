using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Processing;

/// <summary>
/// Endpoint settings of the batch consumer. Prefetch covers every batch in hand plus one more so the
/// next batch is already local when the accelerator frees up; memory stays bounded by
/// BatchMessageLimit x ConcurrentBatches decoded images.
/// </summary>
public sealed class StylizeImageConsumerDefinition : ConsumerDefinition<StylizeImageConsumer>
{
    private readonly WorkerOptions _options;

    public StylizeImageConsumerDefinition(IOptions<WorkerOptions> options)
    {
        _options = options.Value;
        EndpointName = _options.QueueName;
        ConcurrentMessageLimit = _options.BatchMessageLimit * _options.ConcurrentBatches;
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<StylizeImageConsumer> consumerConfigurator, IRegistrationContext context)
    {
        var inHand = _options.BatchMessageLimit * _options.ConcurrentBatches;
        endpointConfigurator.PrefetchCount = Math.Max(_options.PrefetchCount, inHand);
        QueueTopology.Apply(endpointConfigurator, QueueTopology.JobQueueArguments(_options));

        endpointConfigurator.UseFilter(new IsolateRedeliveredFilter(context.GetRequiredService<IJobRedelivery>(),
            context.GetRequiredService<ILoggerFactory>().CreateLogger<IsolateRedeliveredFilter>()));

        consumerConfigurator.Options<BatchOptions>(batch => batch
            .SetMessageLimit(_options.BatchMessageLimit)
            .SetTimeLimit(TimeSpan.FromMilliseconds(_options.BatchTimeLimitMs))
            .SetConcurrencyLimit(_options.ConcurrentBatches));

        // Job failures are outcomes, not exceptions; what escapes is a fault of the whole batch
        // (e.g. the broker connection dropped while publishing). Retry it briefly, never on shutdown.
        // After the last retry the consumer answers every job still unanswered (StylizeImageConsumer), so
        // the retry sits on the consumer, where its attempt number is visible to it.
        consumerConfigurator.UseMessageRetry(retry =>
        {
            retry.Intervals(_options.EffectiveBatchRetryDelays.Select(ms => TimeSpan.FromMilliseconds(ms)).ToArray());
            retry.Ignore<OperationCanceledException>();
        });
    }
}
