using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MambaSt.Batch.Processing;

/// <summary>
/// Names and declare arguments of every queue the worker owns, in one place: MassTransit's endpoint
/// configuration, the redelivery publisher and the start-up check must declare each queue with the same
/// arguments, or RabbitMQ refuses the second declare (PRECONDITION_FAILED). What RabbitMQ 3.10 does with
/// each argument is recorded in docs/reliability.md.
/// </summary>
public static class QueueTopology
{
    public const string DeliveryCountHeader = "x-delivery-count";

    public static string JobQueue(WorkerOptions o) => o.QueueName;

    /// <summary>Where the broker dead-letters a job past its delivery limit; also the name of the fanout
    /// exchange (MassTransit's, bound to the queue) that the job queue dead-letters to.</summary>
    public static string QuarantineQueue(WorkerOptions o) => $"{o.QueueName}_quarantine";

    public static string ErrorQueue(WorkerOptions o) => $"{o.QueueName}_error";

    /// <summary>Where a job goes that the broker redelivered (a worker that held it stopped without answering):
    /// it is run there alone, one message per worker, so a job that kills its worker no longer takes the batch
    /// mates it was prefetched with through the delivery limit into quarantine.</summary>
    public static string IsolationQueue(WorkerOptions o) => $"{o.QueueName}_isolation";

    public static string DelayQueue(WorkerOptions o, int seconds) => $"{o.QueueName}-delay-{seconds}s";

    /// <summary>The job queue: quorum with a delivery limit and at-least-once dead-lettering to the quarantine
    /// exchange (at-least-once needs overflow reject-publish); classic: none (as before).</summary>
    public static Dictionary<string, object?> JobQueueArguments(WorkerOptions o) => o.QueueType == QueueType.Quorum
        ? new()
        {
            ["x-queue-type"] = "quorum",
            ["x-delivery-limit"] = o.DeliveryLimit,
            ["x-dead-letter-exchange"] = QuarantineQueue(o),
            ["x-dead-letter-strategy"] = "at-least-once",
            ["x-overflow"] = "reject-publish",
        }
        : [];

    /// <summary>The isolation queue: the job queue's arguments (its own delivery limit, dead-lettering to the
    /// quarantine exchange), so a job that kills the worker that runs it alone is quarantined from there.</summary>
    public static Dictionary<string, object?> IsolationQueueArguments(WorkerOptions o) => JobQueueArguments(o);

    /// <summary>Declares a MassTransit receive endpoint's queue with <paramref name="arguments"/> (RabbitMQ only; the
    /// in-process transport has no queue arguments).</summary>
    public static void Apply(MassTransit.IReceiveEndpointConfigurator endpoint, Dictionary<string, object?> arguments)
    {
        if (endpoint is not MassTransit.IRabbitMqReceiveEndpointConfigurator rabbit) return;
        foreach (var (key, value) in arguments)
        {
            if (key == "x-queue-type") rabbit.SetQuorumQueue();
            else rabbit.SetQueueArgument(key, value);
        }
    }

    /// <summary>A delay queue: its message TTL is the delay, after which the broker dead-letters the copy into
    /// the job queue's exchange; quorum ones do that at least once (a classic queue drops the copy if the broker
    /// stops in between). A delay queue needs no TTL of its own: each copy leaves after its delay (at most
    /// <see cref="WorkerOptions.MaxRedeliveryDelaySeconds"/>).</summary>
    public static Dictionary<string, object?> DelayQueueArguments(WorkerOptions o, int seconds)
    {
        var args = new Dictionary<string, object?>
        {
            ["x-message-ttl"] = seconds * 1000,
            ["x-dead-letter-exchange"] = o.QueueName,
            ["x-dead-letter-routing-key"] = "",
        };
        if (o.QueueType == QueueType.Quorum)
        {
            args["x-queue-type"] = "quorum";
            args["x-dead-letter-strategy"] = "at-least-once";
            args["x-overflow"] = "reject-publish";
        }

        return args;
    }

    /// <summary>The error queue (jobs whose transient failures outlived their redeliveries, and MassTransit's
    /// faults): classic, kept for people to inspect, for Worker:ParkedMessageTtlHours.</summary>
    public static Dictionary<string, object?> ErrorQueueArguments(WorkerOptions o) => ParkedTtl(o);

    public static Dictionary<string, object?> QuarantineQueueArguments(WorkerOptions o)
    {
        var args = ParkedTtl(o);
        if (o.QueueType == QueueType.Quorum) args["x-queue-type"] = "quorum";
        return args;
    }

    /// <summary>
    /// For publishers (submit, retry-failed): makes sure the job queue and its exchange binding exist without
    /// redeclaring a queue a worker already declared (a publisher does not know the workers' settings, and a
    /// MassTransit "queue:" send address would declare it as a classic queue with no arguments, which RabbitMQ
    /// refuses for the quorum one). A missing queue is declared as a worker with default settings would.
    /// Publishers then send to the exchange named like the queue.
    /// </summary>
    public static async Task EnsureJobQueueAsync(IConnection connection, string queueName, CancellationToken cancellationToken)
    {
        var exists = true;
        await using (var probe = await connection.CreateChannelAsync(cancellationToken: cancellationToken))
        {
            try
            {
                await probe.QueueDeclarePassiveAsync(queueName, cancellationToken);
            }
            catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == 404)
            {
                exists = false;
            }
        }

        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        if (!exists)
        {
            await channel.QueueDeclareAsync(queueName, durable: true, exclusive: false, autoDelete: false,
                arguments: JobQueueArguments(new WorkerOptions { QueueName = queueName }), cancellationToken: cancellationToken);
        }

        await channel.ExchangeDeclareAsync(queueName, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        await channel.QueueBindAsync(queueName, queueName, "", cancellationToken: cancellationToken);
    }

    private static Dictionary<string, object?> ParkedTtl(WorkerOptions o) =>
        o.ParkedMessageTtlHours > 0 ? new() { ["x-message-ttl"] = (int)TimeSpan.FromHours(o.ParkedMessageTtlHours).TotalMilliseconds } : [];
}
