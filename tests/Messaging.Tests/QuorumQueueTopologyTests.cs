using System.Text;
using MambaSt.Batch.Processing;
using MambaSt.Batch.Testing;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MambaSt.Batch.Messaging.Tests;

/// <summary>
/// What this machine's RabbitMQ (3.10) does with each argument the worker declares (<see cref="QueueTopology"/>),
/// on the real broker, through the plain AMQP client: the findings recorded in docs/reliability.md.
/// </summary>
[Trait(TestTraits.Category, TestTraits.Integration)]
public class QuorumQueueTopologyTests(LocalServices services)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<IConnection> ConnectAsync() =>
        await new ConnectionFactory { Uri = services.RabbitMqUri }.CreateConnectionAsync(Ct);

    private static WorkerOptions Options(int deliveryLimit = 2) => new() { QueueName = $"topology-{Guid.NewGuid():N}", DeliveryLimit = deliveryLimit };

    private static async Task DeclareJobQueueAsync(IChannel channel, WorkerOptions o)
    {
        var quarantine = QueueTopology.QuarantineQueue(o);
        await channel.QueueDeclareAsync(quarantine, true, false, false, QueueTopology.QuarantineQueueArguments(o), cancellationToken: Ct);
        await channel.ExchangeDeclareAsync(quarantine, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: Ct);
        await channel.QueueBindAsync(quarantine, quarantine, "", cancellationToken: Ct);
        await channel.QueueDeclareAsync(o.QueueName, true, false, false, QueueTopology.JobQueueArguments(o), cancellationToken: Ct);
        await channel.ExchangeDeclareAsync(o.QueueName, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: Ct);
        await channel.QueueBindAsync(o.QueueName, o.QueueName, "", cancellationToken: Ct);
    }

    private static async Task DeleteAsync(IConnection connection, params string[] queues)
    {
        await using var channel = await connection.CreateChannelAsync(cancellationToken: CancellationToken.None);
        foreach (var q in queues) await channel.QueueDeleteAsync(q, cancellationToken: CancellationToken.None);
    }

    private static async Task<BasicGetResult?> GetAsync(IChannel channel, string queue, TimeSpan patience)
    {
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            var result = await channel.BasicGetAsync(queue, autoAck: false, Ct);
            if (result is not null || DateTime.UtcNow > deadline) return result;
            await Task.Delay(50, Ct);
        }
    }

    private static long? DeliveryCount(BasicGetResult message) =>
        message.BasicProperties.Headers?.TryGetValue(QueueTopology.DeliveryCountHeader, out var v) == true ? Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture) : null;

    [Fact]
    public async Task A_job_returned_past_its_delivery_limit_is_dead_lettered_once_to_the_quarantine_queue_after_limit_plus_one_deliveries()
    {
        var o = Options(deliveryLimit: 2);
        await using var connection = await ConnectAsync();
        try
        {
            await using var channel = await connection.CreateChannelAsync(cancellationToken: Ct);
            await DeclareJobQueueAsync(channel, o);
            await channel.BasicPublishAsync("", o.QueueName, true, new BasicProperties { Persistent = true }, Encoding.UTF8.GetBytes("poison"), Ct);

            // Each return without an ack is what a worker killed mid-batch does to its messages.
            var deliveries = 0;
            while (await GetAsync(channel, o.QueueName, TimeSpan.FromSeconds(2)) is { } message)
            {
                deliveries++;
                DeliveryCount(message).GetValueOrDefault().ShouldBe(deliveries - 1);
                await channel.BasicNackAsync(message.DeliveryTag, multiple: false, requeue: true, Ct);
                deliveries.ShouldBeLessThan(10, "the delivery limit must stop the loop");
            }

            deliveries.ShouldBe(o.DeliveryLimit + 1);
            var quarantined = await GetAsync(channel, QueueTopology.QuarantineQueue(o), TimeSpan.FromSeconds(10));
            quarantined.ShouldNotBeNull();
            Encoding.UTF8.GetString(quarantined.Body.Span).ShouldBe("poison");
            // 3.10 does not carry the count into the dead-lettered copy: the consumer reports DeliveryLimit + 1.
            (DeliveryCount(quarantined) ?? 0).ShouldBe(0);
            var death = ((IList<object>)quarantined.BasicProperties.Headers!["x-death"]!).Cast<IDictionary<string, object>>().Single();
            Encoding.UTF8.GetString((byte[])death["reason"]).ShouldBe("delivery_limit");
            await channel.BasicAckAsync(quarantined.DeliveryTag, false, Ct);
            (await channel.BasicGetAsync(QueueTopology.QuarantineQueue(o), true, Ct)).ShouldBeNull("dead-lettered once");
        }
        finally
        {
            await DeleteAsync(connection, o.QueueName, QueueTopology.QuarantineQueue(o));
        }
    }

    [Fact]
    public async Task A_quorum_delay_queue_dead_letters_its_copy_into_the_job_queue_after_the_delay()
    {
        var o = Options();
        var delay = QueueTopology.DelayQueue(o, 1);
        await using var connection = await ConnectAsync();
        try
        {
            await using var channel = await connection.CreateChannelAsync(cancellationToken: Ct);
            await DeclareJobQueueAsync(channel, o);
            await channel.QueueDeclareAsync(delay, true, false, false, QueueTopology.DelayQueueArguments(o, 1), cancellationToken: Ct);
            await channel.BasicPublishAsync("", delay, true, new BasicProperties { Persistent = true }, Encoding.UTF8.GetBytes("later"), Ct);

            (await channel.BasicGetAsync(o.QueueName, true, Ct)).ShouldBeNull("not before its delay");
            var back = await GetAsync(channel, o.QueueName, TimeSpan.FromSeconds(15));

            back.ShouldNotBeNull();
            Encoding.UTF8.GetString(back.Body.Span).ShouldBe("later");
        }
        finally
        {
            await DeleteAsync(connection, o.QueueName, QueueTopology.QuarantineQueue(o), delay);
        }
    }

    [Fact]
    public async Task A_quorum_queue_drops_messages_past_its_message_ttl()
    {
        var queue = $"topology-ttl-{Guid.NewGuid():N}";
        await using var connection = await ConnectAsync();
        try
        {
            await using var channel = await connection.CreateChannelAsync(cancellationToken: Ct);
            await channel.QueueDeclareAsync(queue, true, false, false,
                new Dictionary<string, object?> { ["x-queue-type"] = "quorum", ["x-message-ttl"] = 300 }, cancellationToken: Ct);
            await channel.BasicPublishAsync("", queue, true, new BasicProperties { Persistent = true }, Encoding.UTF8.GetBytes("old"), Ct);
            await Task.Delay(1500, Ct);

            (await channel.BasicGetAsync(queue, true, Ct)).ShouldBeNull();
        }
        finally
        {
            await DeleteAsync(connection, queue);
        }
    }

    [Fact]
    public async Task Redeclaring_a_classic_job_queue_as_quorum_is_refused_with_PRECONDITION_FAILED()
    {
        var o = Options();
        await using var connection = await ConnectAsync();
        try
        {
            await using (var old = await connection.CreateChannelAsync(cancellationToken: Ct))
            {
                await old.QueueDeclareAsync(o.QueueName, true, false, false, null, cancellationToken: Ct);
            }

            await using var channel = await connection.CreateChannelAsync(cancellationToken: Ct);
            var refused = await Should.ThrowAsync<OperationInterruptedException>(() =>
                channel.QueueDeclareAsync(o.QueueName, true, false, false, QueueTopology.JobQueueArguments(o), cancellationToken: Ct));

            refused.ShutdownReason!.ReplyCode.ShouldBe((ushort)QueueTopologyCheck.PreconditionFailed);
            refused.ShutdownReason.ReplyText.ShouldContain("inequivalent arg");
        }
        finally
        {
            await DeleteAsync(connection, o.QueueName);
        }
    }
}
