using System.Text;
using MambaSt.Batch.Contracts;
using MassTransit;
using MassTransit.RabbitMqTransport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace MambaSt.Batch.Processing;

/// <summary>
/// Queue-based delayed redelivery without a broker plugin: for each delay d in
/// Worker:RedeliveryDelaysSeconds a durable queue "{queue}-delay-{d}s" with x-message-ttl = d and
/// x-dead-letter-exchange = "{queue}" (the exchange MassTransit binds to the input queue); quorum by default,
/// so the dead-lettering is at-least-once (<see cref="QueueTopology"/>). A copy of the
/// original message (body and properties, plus the header mambast-redelivery) is published there with
/// publisher confirms; when its TTL expires RabbitMQ dead-letters it back into the input queue.
/// Owns one connection and one channel, created lazily; thread-safe (publishes are serialized).
/// </summary>
public sealed class RabbitMqDelayQueueRedelivery(
    IOptions<WorkerOptions> workerOptions,
    IOptions<BrokerOptions> brokerOptions,
    ILogger<RabbitMqDelayQueueRedelivery> logger) : IJobRedelivery, IAsyncDisposable
{
    public const string AttemptHeader = "mambast-redelivery";

    private readonly WorkerOptions _worker = workerOptions.Value;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private IConnection? _connection;
    private IChannel? _channel;

    public int AttemptOf(ConsumeContext<StylizeImage> context)
    {
        var value = context.ReceiveContext.TransportHeaders.Get<object>(AttemptHeader);
        return value switch
        {
            int i => i,
            long l => (int)l,
            byte[] b when int.TryParse(Encoding.UTF8.GetString(b), out var p) => p,
            string s when int.TryParse(s, out var p) => p,
            _ => 0,
        };
    }

    public async Task<bool> TryRedeliverAsync(ConsumeContext<StylizeImage> context, JobFailedException failure, CancellationToken cancellationToken)
    {
        var attempt = AttemptOf(context);
        var delays = _worker.EffectiveRedeliveryDelays;
        if (attempt >= delays.Count) return false;

        var queue = QueueTopology.DelayQueue(_worker, delays[attempt]);
        await PublishCopyAsync(context, queue, attempt + 1, failure, QueueTopology.DelayQueueArguments(_worker, delays[attempt]), cancellationToken);
        logger.LogInformation("Job {JobId} of batch {BatchId}: transient {ErrorCode}, redelivery {Attempt}/{Max} in {Delay}s",
            context.Message.JobId, context.Message.BatchId, failure.Code, attempt + 1, delays.Count, delays[attempt]);
        return true;
    }

    public Task MoveToErrorQueueAsync(ConsumeContext<StylizeImage> context, JobFailedException failure, CancellationToken cancellationToken) =>
        PublishCopyAsync(context, QueueTopology.ErrorQueue(_worker), AttemptOf(context), failure, QueueTopology.ErrorQueueArguments(_worker), cancellationToken);

    /// <summary>The broker's redelivered flag is set only when a consumer took the message and did not settle it
    /// (it died, lost its channel, or returned it on shutdown); copies from the delay queues are fresh publishes.
    /// The copy is confirmed before the original is acknowledged (with its batch), so a crash in between leaves
    /// two copies, not none.</summary>
    public async Task<bool> TryIsolateAsync(ConsumeContext<StylizeImage> context, CancellationToken cancellationToken)
    {
        if (!context.ReceiveContext.Redelivered) return false;
        await PublishCopyAsync(context, QueueTopology.IsolationQueue(_worker), AttemptOf(context), null,
            QueueTopology.IsolationQueueArguments(_worker), cancellationToken);
        logger.LogWarning("Job {JobId} of batch {BatchId}: redelivered by the broker (a worker stopped while holding it); moved to {Queue} to run alone",
            context.Message.JobId, context.Message.BatchId, QueueTopology.IsolationQueue(_worker));
        return true;
    }

    private async Task PublishCopyAsync(ConsumeContext<StylizeImage> context, string queue, int attempt, JobFailedException? failure,
        Dictionary<string, object?> arguments, CancellationToken cancellationToken)
    {
        var body = context.ReceiveContext.Body.GetBytes();
        var properties = new BasicProperties { Persistent = true, Headers = new Dictionary<string, object?>() };
        if (context.ReceiveContext.TryGetPayload<RabbitMqBasicConsumeContext>(out var rabbit))
        {
            var original = rabbit.Properties;
            properties.ContentType = original.ContentType;
            properties.MessageId = original.MessageId;
            properties.CorrelationId = original.CorrelationId;
            properties.Type = original.Type;
            if (original.Headers is not null)
            {
                foreach (var (k, v) in original.Headers) properties.Headers[k] = v;
            }
        }
        else
        {
            properties.ContentType = context.ReceiveContext.ContentType?.MediaType;
        }

        properties.Headers[AttemptHeader] = attempt;
        if (failure is not null)
        {
            properties.Headers["mambast-error-code"] = failure.Code.ToString();
            properties.Headers["mambast-error-message"] = failure.Message.Length > 1000 ? failure.Message[..1000] : failure.Message;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            var channel = await GetChannelAsync(cancellationToken);
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: arguments, cancellationToken: cancellationToken);
            await channel.BasicPublishAsync("", queue, mandatory: true, properties, body, cancellationToken);
        }
        catch (Exception) when (_channel is { IsOpen: false })
        {
            _channel = null;
            throw;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<IChannel> GetChannelAsync(CancellationToken cancellationToken)
    {
        if (_channel is { IsOpen: true }) return _channel;
        if (_connection is not { IsOpen: true })
        {
            if (_connection is not null) await _connection.DisposeAsync();
            var broker = brokerOptions.Value;
            var factory = new ConnectionFactory { Uri = broker.ToAmqpUri(), ClientProvidedName = "mambast-redelivery" };
            if (!string.IsNullOrEmpty(broker.Username)) factory.UserName = broker.Username;
            if (!string.IsNullOrEmpty(broker.Password)) factory.Password = broker.Password;
            _connection = await factory.CreateConnectionAsync(cancellationToken);
        }

        _channel = await _connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), cancellationToken);
        return _channel;
    }

    public async ValueTask DisposeAsync()
    {
        if (_channel is not null) await _channel.DisposeAsync();
        if (_connection is not null) await _connection.DisposeAsync();
        _gate.Dispose();
    }
}
