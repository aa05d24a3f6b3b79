using System.Net.Mime;
using System.Text.Json;
using CloudNative.CloudEvents;
using CloudNative.CloudEvents.SystemTextJson;
using MambaSt.Batch.Contracts;
using MassTransit;
using MassTransit.Serialization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MambaSt.Batch.Processing;

/// <summary>
/// Publishes an outcome event as a CloudEvents 1.0 structured-mode JSON message (AMQP binding: the whole event in
/// the body, content type <c>application/cloudevents+json</c>) to the topic exchange <see cref="CloudEventsOptions.Exchange"/>
/// with routing key <c>&lt;type&gt;.&lt;batch id&gt;</c>. <c>data</c> is the event exactly as MassTransit serializes it
/// (contracts/schemas). Uses RabbitMQ.Client directly because the body must be the CloudEvent itself, not a
/// MassTransit envelope. Owns one connection and one confirm-tracking channel, created lazily and recreated after
/// a failure; publishes are serialized, and each completes only when the broker confirmed it (a nack throws).
/// </summary>
public sealed class CloudEventsPublisher(
    IOptions<CloudEventsOptions> cloudEventsOptions,
    IOptions<BrokerOptions> brokerOptions,
    IOptions<WorkerOptions> workerOptions,
    ILogger<CloudEventsPublisher> logger) : IHostedService, IAsyncDisposable
{
    public const string StylizedType = "mambast.image.stylized.v1";

    public const string FailedType = "mambast.image.failed.v1";

    public const string StructuredContentType = "application/cloudevents+json";

    private static readonly JsonEventFormatter Formatter = new(SystemTextJsonMessageSerializer.Options, default);

    private readonly CloudEventsOptions _options = cloudEventsOptions.Value;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private IConnection? _connection;
    private IChannel? _channel;

    public Uri Source { get; } = new(cloudEventsOptions.Value.Source
        ?? "urn:mambast:worker:" + Uri.EscapeDataString(workerOptions.Value.WorkerId), UriKind.RelativeOrAbsolute);

    public static string RoutingKey(string type, string batchId) => $"{type}.{batchId}";

    public CloudEvent ToCloudEvent(ImageStylized e) => Create(StylizedType, e.JobId, e.CompletedAt, e);

    public CloudEvent ToCloudEvent(ImageStylizationFailed e) => Create(FailedType, e.JobId, e.FailedAt, e);

    public static ReadOnlyMemory<byte> Encode(CloudEvent cloudEvent) => Formatter.EncodeStructuredModeMessage(cloudEvent, out _);

    public Task PublishAsync(ImageStylized e, CancellationToken cancellationToken) => PublishAsync(ToCloudEvent(e), e.BatchId, cancellationToken);

    public Task PublishAsync(ImageStylizationFailed e, CancellationToken cancellationToken) => PublishAsync(ToCloudEvent(e), e.BatchId, cancellationToken);

    private CloudEvent Create<T>(string type, Guid jobId, DateTimeOffset time, T data) => new(CloudEventsSpecVersion.V1_0)
    {
        Id = Guid.NewGuid().ToString("D"),
        Type = type,
        Source = Source,
        Subject = jobId.ToString("D"),
        Time = time == default ? DateTimeOffset.UtcNow : time,
        DataContentType = MediaTypeNames.Application.Json,
        DataSchema = new Uri("urn:mambast:schema:" + typeof(T).Name),
        Data = JsonSerializer.SerializeToElement(data, SystemTextJsonMessageSerializer.Options),
    };

    private async Task PublishAsync(CloudEvent cloudEvent, string batchId, CancellationToken cancellationToken)
    {
        var body = Encode(cloudEvent);
        var properties = new BasicProperties
        {
            ContentType = StructuredContentType,
            MessageId = cloudEvent.Id,
            Persistent = true,
            Timestamp = new AmqpTimestamp(DateTimeOffset.UtcNow.ToUnixTimeSeconds()),
            Headers = new Dictionary<string, object?> { [EventHeaders.BatchId] = batchId },
        };
        var routingKey = RoutingKey(cloudEvent.Type!, batchId);

        await _gate.WaitAsync(cancellationToken);
        try
        {
            var channel = await ChannelAsync(cancellationToken);
            await channel.BasicPublishAsync(_options.Exchange, routingKey, mandatory: false, properties, body, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogWarning(ex, "CloudEvent {Type} for job {JobId} not confirmed by the broker; the delivery batch is retried", cloudEvent.Type, cloudEvent.Subject);
            await ResetAsync();
            throw;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Declares the exchange before the bus starts: an exchange of another type (a bad CloudEvents:Exchange)
    /// stops the worker here rather than failing every batch. An unreachable broker only warns (MassTransit waits for it too).</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!_options.Enabled) return;
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await ChannelAsync(cancellationToken);
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == Constants.PreconditionFailed)
        {
            await ResetAsync();
            throw new InvalidOperationException(
                $"CloudEvents:Exchange '{_options.Exchange}' exists on the broker but is not a durable topic exchange: {ex.ShutdownReason.ReplyText}. " +
                "Choose another name or delete that exchange.", ex);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogWarning(ex, "CloudEvents: broker not reachable at start; connecting on the first event");
            await ResetAsync();
        }
        finally
        {
            _gate.Release();
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task<IChannel> ChannelAsync(CancellationToken cancellationToken)
    {
        if (_channel is { IsOpen: true }) return _channel;
        await ResetAsync();
        var broker = brokerOptions.Value;
        var factory = new ConnectionFactory { Uri = broker.ToAmqpUri(), ClientProvidedName = "mambast-worker-cloudevents", RequestedConnectionTimeout = TimeSpan.FromSeconds(10) };
        if (!string.IsNullOrEmpty(broker.Username)) factory.UserName = broker.Username;
        if (!string.IsNullOrEmpty(broker.Password)) factory.Password = broker.Password;
        _connection = await factory.CreateConnectionAsync(cancellationToken);
        _channel = await _connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), cancellationToken);
        await _channel.ExchangeDeclareAsync(_options.Exchange, ExchangeType.Topic, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        return _channel;
    }

    private async Task ResetAsync()
    {
        if (_channel is not null) await _channel.DisposeAsync();
        if (_connection is not null) await _connection.DisposeAsync();
        _channel = null;
        _connection = null;
    }

    public async ValueTask DisposeAsync()
    {
        await ResetAsync();
        _gate.Dispose();
    }
}

/// <summary>
/// Sends the CloudEvents copy of each outcome after MassTransit published (and the broker confirmed) the event
/// itself. A CloudEvents failure escapes the publish call, so the consumer's batch fails before the job is marked
/// answered and the batch is retried: both events are published again (at least once, never lost).
/// </summary>
public sealed class CloudEventsPublishObserver(CloudEventsPublisher publisher, IOptions<CloudEventsOptions> options) : IPublishObserver
{
    public Task PrePublish<T>(PublishContext<T> context)
        where T : class => Task.CompletedTask;

    public Task PostPublish<T>(PublishContext<T> context)
        where T : class
    {
        if (!options.Value.Enabled) return Task.CompletedTask;
        return context.Message switch
        {
            ImageStylized e => publisher.PublishAsync(e, context.CancellationToken),
            ImageStylizationFailed e => publisher.PublishAsync(e, context.CancellationToken),
            _ => Task.CompletedTask,
        };
    }

    public Task PublishFault<T>(PublishContext<T> context, Exception exception)
        where T : class => Task.CompletedTask;
}
