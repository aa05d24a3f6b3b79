using MambaSt.Batch.Contracts;

using MassTransit;

using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MambaSt.Batch.Submitter.Broker;

/// <summary>
/// The queue that feeds <c>watch</c> for one batch: <c>mambast-batch-&lt;batchId&gt;</c>, bound to the
/// ImageStylized and ImageStylizationFailed exchanges the way a MassTransit receive endpoint binds
/// itself (message exchange -> endpoint exchange -> queue), so the watcher's own declarations match.
/// Declared by <c>submit</c> before its first publish so that no event of the batch is lost.
/// </summary>
public static class BatchTopology
{
    public static readonly string[] EventExchanges =
    [
        MessageExchange<ImageStylized>(),
        MessageExchange<ImageStylizationFailed>(),
    ];

    public static string MessageExchange<T>() => $"{typeof(T).Namespace}:{typeof(T).Name}";

    public static async Task EnsureWatchQueueAsync(BrokerSettings broker, string queue, CancellationToken cancellationToken)
    {
        await using var connection = await ConnectAsync(broker, cancellationToken);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: null, cancellationToken: cancellationToken);
        await channel.ExchangeDeclareAsync(queue, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        await channel.QueueBindAsync(queue, queue, "", cancellationToken: cancellationToken);
        foreach (var exchange in EventExchanges)
        {
            await channel.ExchangeDeclareAsync(exchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
            await channel.ExchangeBindAsync(queue, exchange, "", cancellationToken: cancellationToken);
        }
    }

    public static async Task DeleteWatchQueueAsync(BrokerSettings broker, string queue, CancellationToken cancellationToken)
    {
        await using var connection = await ConnectAsync(broker, cancellationToken);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        await channel.QueueDeleteAsync(queue, cancellationToken: cancellationToken);
        await channel.ExchangeDeleteAsync(queue, cancellationToken: cancellationToken);
    }

    /// <summary>Messages waiting in <paramref name="queue"/>, or null when it does not exist.</summary>
    public static async Task<uint?> CountMessagesAsync(BrokerSettings broker, string queue, CancellationToken cancellationToken)
    {
        await using var connection = await ConnectAsync(broker, cancellationToken);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        try
        {
            var ok = await channel.QueueDeclarePassiveAsync(queue, cancellationToken);
            return ok.MessageCount;
        }
        catch (OperationInterruptedException)
        {
            return null;
        }
    }

    public static async Task<IConnection> ConnectAsync(BrokerSettings broker, CancellationToken cancellationToken)
    {
        var factory = new ConnectionFactory { Uri = ToAmqp(broker.Url), ClientProvidedName = "mambast", RequestedConnectionTimeout = TimeSpan.FromSeconds(10) };
        try
        {
            return await factory.CreateConnectionAsync(cancellationToken);
        }
        catch (BrokerUnreachableException ex)
        {
            throw new UnreachableException($"RabbitMQ at {broker.Display} is unreachable: {Reason(ex)}. Check --broker / Broker__Url and that the broker runs.", ex);
        }
    }

    /// <summary>MassTransit's host address for the same broker.</summary>
    public static Uri ToMassTransit(Uri url) => url.Scheme switch
    {
        "amqp" => new UriBuilder(url) { Scheme = "rabbitmq" }.Uri,
        "amqps" => new UriBuilder(url) { Scheme = "rabbitmqs" }.Uri,
        _ => url,
    };

    private static Uri ToAmqp(Uri url) => url.Scheme switch
    {
        "rabbitmq" => new UriBuilder(url) { Scheme = "amqp" }.Uri,
        "rabbitmqs" => new UriBuilder(url) { Scheme = "amqps" }.Uri,
        _ => url,
    };

    private static string Reason(Exception ex)
    {
        var inner = ex;
        while (inner.InnerException is not null) inner = inner.InnerException;
        return inner is AuthenticationFailureException ? "authentication failed" : inner.Message;
    }
}
