using MambaSt.Batch.Contracts;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Testing;

using MassTransit;

using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary>A batch's watch queue receives its own batch's events only, on real RabbitMQ.</summary>
[Trait(TestTraits.Category, TestTraits.Integration)]
public class BatchTopologyTests(LocalServices services)
{
    [Fact]
    public async Task A_batch_queue_holds_only_the_events_whose_batch_id_header_names_its_batch_and_expires()
    {
        var ct = TestContext.Current.CancellationToken;
        var (a, b) = (NewBatchId("a"), NewBatchId("b"));
        var broker = new BrokerSettings { Url = services.RabbitMqUri };
        try
        {
            (await BatchTopology.EnsureWatchQueueAsync(broker, a, ct)).ShouldBeTrue();

            await PublishAsync(ct, (b, Done(b)), (b, Failed(b)), (a, Done(a)));

            (await BatchTopology.CountMessagesAsync(broker, BatchPaths.WatchQueue(a), ct)).ShouldBe(1u);
            var redeclare = await Should.ThrowAsync<OperationInterruptedException>(() => DeclareWithoutArgumentsAsync(BatchPaths.WatchQueue(a), ct));
            redeclare.ShutdownReason!.ReplyText.ShouldContain("x-expires");
        }
        finally
        {
            await BatchTopology.DeleteWatchQueueAsync(broker, BatchPaths.WatchQueue(a), CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_queue_of_an_older_submit_is_kept_and_stops_receiving_other_batches_events()
    {
        var ct = TestContext.Current.CancellationToken;
        var (old, other) = (NewBatchId("old"), NewBatchId("other"));
        var queue = BatchPaths.WatchQueue(old);
        var broker = new BrokerSettings { Url = services.RabbitMqUri };
        try
        {
            await DeclareOlderTopologyAsync(queue, ct);

            (await BatchTopology.EnsureWatchQueueAsync(broker, old, ct)).ShouldBeFalse();
            await PublishAsync(ct, (other, Done(other)), (old, Done(old)));

            // Until the migration the old fanout binding also took other tests' events: count this test's own.
            var bodies = await DrainAsync(queue, ct);
            bodies.Count(b => b.Contains(old, StringComparison.Ordinal)).ShouldBe(1);
            bodies.ShouldNotContain(b => b.Contains(other, StringComparison.Ordinal));
        }
        finally
        {
            await BatchTopology.DeleteWatchQueueAsync(broker, queue, CancellationToken.None);
        }
    }

    [Fact]
    public async Task Submit_and_watch_complete_a_batch_whose_queue_an_older_submit_declared()
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(90));
        var ct = limit.Token;
        using var dir = TempDir.WithImages(2, size: 8);
        var batchId = NewBatchId("legacy");
        var queue = $"stylize-test-{Guid.NewGuid():N}";
        var broker = new BrokerSettings { Url = services.RabbitMqUri, Queue = queue };
        try
        {
            await DeclareOlderTopologyAsync(BatchPaths.WatchQueue(batchId), ct);
            var submit = await CliRunner.RunAsync("submit", dir.Path("in"), "--style", dir.Path("style.png"), "--out", dir.Path("out"),
                "--broker", services.RabbitMqUrl, "--queue", queue, "--batch-id", batchId);
            submit.Exit.ShouldBe(0, submit.Error);
            var jobs = JsonLines.Read<JobRecord>(await File.ReadAllTextAsync(dir.Path($"out/{BatchPaths.Jobs(batchId)}"), ct));
            var other = NewBatchId("other");
            await PublishAsync(ct, [(other, Done(other)), .. jobs.Select(j => (batchId, (object)(Done(batchId) with { JobId = j.JobId })))]);

            var watch = await CliRunner.RunAsync("watch", "--batch-id", batchId, "--output", dir.Path("out"), "--broker", services.RabbitMqUrl);

            watch.Exit.ShouldBe(0, watch.Error);
            watch.Out.ShouldContain("2 done, 0 failed, 0 pending of 2");
        }
        finally
        {
            await BatchTopology.DeleteWatchQueueAsync(broker, queue, CancellationToken.None);
            await BatchTopology.DeleteWatchQueueAsync(broker, BatchPaths.WatchQueue(batchId), CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_finished_watch_deletes_its_queue_only_when_no_one_consumes_it_and_no_event_waits_in_it()
    {
        var ct = TestContext.Current.CancellationToken;
        var batchId = NewBatchId("idle");
        var queue = BatchPaths.WatchQueue(batchId);
        var broker = new BrokerSettings { Url = services.RabbitMqUri };
        try
        {
            await BatchTopology.EnsureWatchQueueAsync(broker, batchId, ct);
            await PublishAsync(ct, (batchId, Done(batchId)));
            (await BatchTopology.DeleteWatchQueueIfIdleAsync(broker, queue, ct)).ShouldBeFalse(); // an outcome still waits
            (await BatchTopology.CountMessagesAsync(broker, queue, ct)).ShouldBe(1u);

            (await DrainAsync(queue, ct)).Count.ShouldBe(1);
            await using (var connection = await new ConnectionFactory { Uri = services.RabbitMqUri }.CreateConnectionAsync(ct))
            await using (var channel = await connection.CreateChannelAsync(cancellationToken: ct))
            {
                var consumer = new AsyncEventingBasicConsumer(channel);
                await channel.BasicConsumeAsync(queue, autoAck: false, consumer, ct);
                (await BatchTopology.DeleteWatchQueueIfIdleAsync(broker, queue, ct)).ShouldBeFalse(); // another watch consumes it
            }

            (await BatchTopology.DeleteWatchQueueIfIdleAsync(broker, queue, ct)).ShouldBeTrue();
            (await BatchTopology.CountMessagesAsync(broker, queue, ct)).ShouldBeNull();
        }
        finally
        {
            await BatchTopology.DeleteWatchQueueAsync(broker, queue, CancellationToken.None);
        }
    }

    private static string NewBatchId(string name) => $"topo-{name}-{Guid.NewGuid():N}"[..24];

    private static ImageStylized Done(string batchId) => new()
    {
        JobId = Guid.NewGuid(), BatchId = batchId, OutputRef = "out/x.jpg", Width = 1, Height = 1, OutputBytes = 1,
        Timings = new StageTimings { TotalMs = 1 }, ModelId = "stand-in", ModelVersion = "0", WorkerId = "stand-in",
    };

    private static ImageStylizationFailed Failed(string batchId) => new()
    {
        JobId = Guid.NewGuid(), BatchId = batchId, ErrorCode = StylizationErrorCode.InvalidImage, Message = "stand-in", AttemptCount = 1, Transient = false,
    };

    /// <summary>Publishes as the worker does (the batch id header on each event), with publisher confirms: routed when this returns.</summary>
    private async Task PublishAsync(CancellationToken ct, params (string BatchId, object Event)[] events)
    {
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(services.RabbitMqUri, h => h.PublisherConfirmation = true));
        await bus.StartAsync(ct);
        try
        {
            foreach (var (batchId, message) in events)
            {
                await bus.Publish(message, message.GetType(), p => p.Headers.Set(BatchTopology.BatchIdHeader, batchId), ct);
            }
        }
        finally
        {
            await bus.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>Takes every message off the queue (acknowledged), as UTF-8 bodies.</summary>
    private async Task<List<string>> DrainAsync(string queue, CancellationToken ct)
    {
        await using var connection = await new ConnectionFactory { Uri = services.RabbitMqUri }.CreateConnectionAsync(ct);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: ct);
        var bodies = new List<string>();
        while (await channel.BasicGetAsync(queue, autoAck: true, ct) is { } message)
        {
            bodies.Add(System.Text.Encoding.UTF8.GetString(message.Body.Span));
        }

        return bodies;
    }

    private async Task DeclareWithoutArgumentsAsync(string queue, CancellationToken ct)
    {
        await using var connection = await new ConnectionFactory { Uri = services.RabbitMqUri }.CreateConnectionAsync(ct);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: ct);
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: null, cancellationToken: ct);
    }

    /// <summary>The topology submit declared before the headers exchange: no expiry, a fanout exchange named like the
    /// queue, bound to the event exchanges (so it received every batch's events).</summary>
    private async Task DeclareOlderTopologyAsync(string queue, CancellationToken ct)
    {
        await using var connection = await new ConnectionFactory { Uri = services.RabbitMqUri }.CreateConnectionAsync(ct);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: ct);
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: null, cancellationToken: ct);
        await channel.ExchangeDeclareAsync(queue, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: ct);
        await channel.QueueBindAsync(queue, queue, "", cancellationToken: ct);
        foreach (var exchange in BatchTopology.EventExchanges)
        {
            await channel.ExchangeDeclareAsync(exchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: ct);
            await channel.ExchangeBindAsync(queue, exchange, "", cancellationToken: ct);
        }
    }
}
