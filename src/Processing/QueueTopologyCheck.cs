using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MambaSt.Batch.Processing;

/// <summary>
/// Declares the worker's queues (<see cref="QueueTopology"/>) before the bus starts, so that a queue left
/// over with other arguments (a classic queue from before quorum queues became the default) stops the worker
/// at start with a message that names the queue, the setting and the migration step, instead of MassTransit
/// retrying a refused declare (PRECONDITION_FAILED) in its log forever. An unreachable broker is not an
/// error here: the bus keeps connecting, as before.
/// </summary>
public sealed class QueueTopologyCheck(
    IOptions<WorkerOptions> workerOptions,
    IOptions<BrokerOptions> brokerOptions,
    ILogger<QueueTopologyCheck> logger) : IHostedService
{
    public const int PreconditionFailed = 406;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var o = workerOptions.Value;
        var broker = brokerOptions.Value;
        var factory = new ConnectionFactory { Uri = broker.ToAmqpUri(), ClientProvidedName = "mambast-topology-check" };
        if (!string.IsNullOrEmpty(broker.Username)) factory.UserName = broker.Username;
        if (!string.IsNullOrEmpty(broker.Password)) factory.Password = broker.Password;
        IConnection connection;
        try
        {
            connection = await factory.CreateConnectionAsync(cancellationToken);
        }
        catch (BrokerUnreachableException ex)
        {
            logger.LogWarning("Queue check skipped: RabbitMQ at {Url} is not reachable yet ({Message}); the bus declares the queues when it connects",
                BrokerOptions.Redact(broker.Url), ex.Message);
            return;
        }

        await using (connection)
        {
            // The job queue first: a refused one leaves nothing new behind (its dead-letter exchange may come later).
            await DeclareAsync(connection, QueueTopology.JobQueue(o), QueueTopology.JobQueueArguments(o), o, cancellationToken);
            var quarantine = QueueTopology.QuarantineQueue(o);
            await DeclareAsync(connection, quarantine, QueueTopology.QuarantineQueueArguments(o), o, cancellationToken);
            await using (var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken))
            {
                // MassTransit's own declare of the endpoint's exchange (fanout, durable) and binding: the job
                // queue dead-letters to this exchange.
                await channel.ExchangeDeclareAsync(quarantine, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
                await channel.QueueBindAsync(quarantine, quarantine, "", cancellationToken: cancellationToken);
            }

            await DeclareAsync(connection, QueueTopology.IsolationQueue(o), QueueTopology.IsolationQueueArguments(o), o, cancellationToken);
            await DeclareAsync(connection, QueueTopology.ErrorQueue(o), QueueTopology.ErrorQueueArguments(o), o, cancellationToken);
            await DeclareAsync(connection, $"{QueueTopology.IsolationQueue(o)}_error", QueueTopology.ErrorQueueArguments(o), o, cancellationToken);
            await DeclareAsync(connection, $"{quarantine}_error", QueueTopology.ErrorQueueArguments(o), o, cancellationToken);
            foreach (var delay in o.EffectiveRedeliveryDelays.Distinct())
            {
                await DeclareAsync(connection, QueueTopology.DelayQueue(o, delay), QueueTopology.DelayQueueArguments(o, delay), o, cancellationToken);
            }
        }

        logger.LogInformation("Queues of {Queue} declared as {QueueType} (delivery limit {DeliveryLimit}, parked messages kept {TtlHours} h)",
            o.QueueName, o.QueueType, o.QueueType == QueueType.Quorum ? o.DeliveryLimit : null, o.ParkedMessageTtlHours);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static async Task DeclareAsync(IConnection connection, string queue, Dictionary<string, object?> arguments, WorkerOptions o, CancellationToken ct)
    {
        // A refused declare closes its channel: one channel per declare.
        await using var channel = await connection.CreateChannelAsync(cancellationToken: ct);
        try
        {
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: arguments, cancellationToken: ct);
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == PreconditionFailed)
        {
            throw new InvalidOperationException(
                $"RabbitMQ refused to declare queue '{queue}' as this worker is configured (Worker:QueueType={o.QueueType}, " +
                $"arguments {string.Join(", ", arguments.Select(a => $"{a.Key}={a.Value}"))}): {ex.ShutdownReason?.ReplyText}. " +
                "The queue exists with other arguments, most likely a classic queue declared before quorum queues became the default. " +
                "Either keep the old queues (Worker:QueueType=Classic and Worker:ParkedMessageTtlHours=0) or migrate them: " +
                "docs/reliability.md, section \"Migrating from classic queues\".", ex);
        }
    }
}
