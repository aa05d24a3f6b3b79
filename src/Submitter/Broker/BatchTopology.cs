using MambaSt.Batch.Contracts;
using MambaSt.Batch.Submitter.Batches;

using MassTransit;

using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MambaSt.Batch.Submitter.Broker;

/// <summary>
/// The queue that feeds <c>watch</c> for one batch: <c>mambast-batch-&lt;batchId&gt;</c>. The ImageStylized and
/// ImageStylizationFailed exchanges feed one shared headers exchange, <see cref="BatchEventsExchange"/>; each
/// batch queue is bound to it on <see cref="BatchIdHeader"/> = its batch id, so it receives its own batch's events
/// only. The queue expires after <see cref="WatchQueueExpiry"/> without a consumer.
/// Declared by <c>submit</c> before its first publish so that no event of the batch is lost.
/// </summary>
public static class BatchTopology
{
    /// <summary>Transport header the worker puts on every ImageStylized / ImageStylizationFailed: the message's
    /// BatchId (the worker's <c>StylizeImageConsumer.BatchIdHeader</c>).</summary>
    public const string BatchIdHeader = EventHeaders.BatchId;

    /// <summary>The headers exchange between the event exchanges and the batch queues.</summary>
    public const string BatchEventsExchange = "mambast-batch-events";

    /// <summary>A batch queue unused (no consumer, no redeclaration by submit, watch or retry-failed) this long is
    /// deleted by the broker with its events: the safety net for batches nobody watches to the end. Publishing
    /// into it does not count as use, so it is far longer than a backlog or a redelivery chain should last.
    /// <c>watch</c> still completes such a batch from the outputs that exist; the failures it would have shown
    /// are lost.</summary>
    public static readonly TimeSpan WatchQueueExpiry = TimeSpan.FromDays(30);

    public static readonly string[] EventExchanges =
    [
        MessageExchange<ImageStylized>(),
        MessageExchange<ImageStylizationFailed>(),
    ];

    public static string MessageExchange<T>() => $"{typeof(T).Namespace}:{typeof(T).Name}";

    /// <summary>The queue arguments of a batch queue declared by this version (x-expires).</summary>
    public static Dictionary<string, object?> WatchQueueArguments() => new() { ["x-expires"] = (long)WatchQueueExpiry.TotalMilliseconds };

    /// <summary>
    /// Declares the batch's queue and its header binding. A queue declared by an older submit (no x-expires, fed by
    /// a fanout exchange of the same name bound to the event exchanges) is kept as it is, except that its fanout
    /// exchange is unbound from the event exchanges, so it too receives only its own batch's events from now on.
    /// </summary>
    /// <returns>Whether the queue has the x-expires argument (false for such an older queue): consumers must
    /// declare it with the same arguments.</returns>
    public static async Task<bool> EnsureWatchQueueAsync(BrokerSettings broker, string batchId, CancellationToken cancellationToken)
    {
        var queue = BatchPaths.WatchQueue(batchId);
        await using var connection = await ConnectAsync(broker, cancellationToken);
        var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        try
        {
            await channel.ExchangeDeclareAsync(BatchEventsExchange, ExchangeType.Headers, durable: true, autoDelete: false, cancellationToken: cancellationToken);
            foreach (var exchange in EventExchanges)
            {
                await channel.ExchangeDeclareAsync(exchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
                await channel.ExchangeBindAsync(BatchEventsExchange, exchange, "", cancellationToken: cancellationToken);
            }

            var expires = true;
            try
            {
                await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: WatchQueueArguments(), cancellationToken: cancellationToken);
            }
            catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == Constants.PreconditionFailed)
            {
                expires = false;
                await channel.DisposeAsync();
                channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
                await channel.QueueDeclarePassiveAsync(queue, cancellationToken);
            }

            // The header binding first: an older queue is fed by both paths for a moment (watch ignores
            // repeats), never by neither.
            var match = new Dictionary<string, object?> { ["x-match"] = "all", [BatchIdHeader] = batchId };
            await channel.QueueBindAsync(queue, BatchEventsExchange, "", match, cancellationToken: cancellationToken);
            if (!expires)
            {
                await UnbindOlderFanoutAsync(connection, queue, cancellationToken);
            }

            return expires;
        }
        finally
        {
            await channel.DisposeAsync();
        }
    }

    private static async Task UnbindOlderFanoutAsync(IConnection connection, string queue, CancellationToken cancellationToken)
    {
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        try
        {
            await channel.ExchangeDeclarePassiveAsync(queue, cancellationToken);
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == Constants.NotFound)
        {
            return;
        }

        foreach (var exchange in EventExchanges)
        {
            await channel.ExchangeUnbindAsync(queue, exchange, "", cancellationToken: cancellationToken);
        }
    }

    public static async Task DeleteWatchQueueAsync(BrokerSettings broker, string queue, CancellationToken cancellationToken)
    {
        await using var connection = await ConnectAsync(broker, cancellationToken);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        await channel.QueueDeleteAsync(queue, cancellationToken: cancellationToken);
        await channel.ExchangeDeleteAsync(queue, cancellationToken: cancellationToken);
    }

    /// <summary>
    /// Deletes a finished batch's watch queue (and its exchange) only when no consumer uses it and no event
    /// waits in it: another watch of the batch, or the outcome of a job sent again by retry-failed, keeps it.
    /// Returns whether it was deleted (true also when it no longer exists).
    /// </summary>
    public static async Task<bool> DeleteWatchQueueIfIdleAsync(BrokerSettings broker, string queue, CancellationToken cancellationToken)
    {
        await using var connection = await ConnectAsync(broker, cancellationToken);
        await using (var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken))
        {
            try
            {
                await channel.QueueDeleteAsync(queue, ifUnused: true, ifEmpty: true, cancellationToken: cancellationToken);
            }
            catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 406)
            {
                return false; // PRECONDITION_FAILED: in use or not empty
            }
        }

        await using var exchangeChannel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        await exchangeChannel.ExchangeDeleteAsync(queue, cancellationToken: cancellationToken);
        return true;
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
