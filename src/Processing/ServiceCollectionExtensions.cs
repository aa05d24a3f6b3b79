using MambaSt.Batch.Processing.Ports;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace MambaSt.Batch.Processing;

public static class ServiceCollectionExtensions
{
    /// <summary>Registers the pipeline and what it stands on (imaging, storage, inference), with options
    /// validated at start. Redelivery defaults to none (in-process transport); the worker host adds the RabbitMQ one.</summary>
    public static IServiceCollection AddStylizationPipeline(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<WorkerOptions>().BindConfiguration(WorkerOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddStylizationAdapters(configuration);
        services.TryAddSingleton<StylizationMetrics>();
        services.TryAddSingleton<HandledJobs>();
        services.TryAddSingleton<ModelHealth>();
        services.TryAddSingleton<StyleBytesCache>();
        services.TryAddSingleton<StylizationPipeline>();
        services.TryAddSingleton<IJobRedelivery, NoRedelivery>();
        return services;
    }

    /// <summary>The RabbitMQ queue-based delayed redelivery (worker host).</summary>
    public static IServiceCollection AddRabbitMqRedelivery(this IServiceCollection services)
    {
        services.AddOptions<BrokerOptions>().BindConfiguration(BrokerOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.RemoveAll<IJobRedelivery>();
        services.AddSingleton<IJobRedelivery, RabbitMqDelayQueueRedelivery>();
        return services;
    }

    /// <summary>CloudEvents copies of the outcome events on the topic exchange CloudEvents:Exchange (worker host; on unless CloudEvents:Enabled is false).</summary>
    public static IServiceCollection AddCloudEventsPublishing(this IServiceCollection services)
    {
        services.AddOptions<CloudEventsOptions>().BindConfiguration(CloudEventsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<CloudEventsPublisher>();
        services.AddHostedService(sp => sp.GetRequiredService<CloudEventsPublisher>());
        services.AddPublishObserver<CloudEventsPublishObserver>();
        return services;
    }

    public static IBusRegistrationConfigurator AddStylizationConsumer(this IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<StylizeImageConsumer, StylizeImageConsumerDefinition>();
        return bus;
    }
}
