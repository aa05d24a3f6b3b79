using System.Text;
using System.Text.Json.Nodes;
using MambaSt.Batch.Contracts;
using MambaSt.Batch.Processing;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Testing;
using MambaSt.Batch.Worker.Tests;
using RabbitMQ.Client;

namespace MambaSt.Batch.Integration.Tests;

/// <summary>The sample subscribers (samples/) and the CloudEvents publisher against the real RabbitMQ, Azurite and
/// worker process (tiny golden model).</summary>
[Trait(TestTraits.Category, TestTraits.Integration)]
public class SubscriberEndToEndTests(LocalServices services)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task Both_sample_subscribers_receive_nine_stylized_and_one_failed_and_every_event_matches_its_schema()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var h = new PipelineHarness(services);
        await h.StartListeningAsync(ct);
        await using var rabbit = await Capture.StartAsync(services.RabbitMqUrl, h.BatchId, ct);

        await using var dotnet = SampleProcess.Start("dotnet", SampleProcess.DotnetSubscriberDll, "--batch", h.BatchId, "--broker", services.RabbitMqUrl, "--expect", "10");
        await using var python = SampleProcess.Start("/usr/bin/python3", SampleProcess.PythonSubscriber, "--batch", h.BatchId, "--url", services.RabbitMqUrl, "--expect", "10");
        await dotnet.WaitForLineAsync("listening", Patience, ct);
        await python.WaitForLineAsync("listening", Patience, ct);

        var jobs = await h.UploadJobsAsync(9, 64, 48, ct);
        var good = h.MakeJpeg(99);
        await h.UploadAsync("in/corrupt.jpg", good[..(good.Length / 3)], ct);
        var corrupt = h.Job("in/corrupt.jpg");
        jobs.Add(corrupt);

        await using var worker = WorkerProcess.Start(h.WorkerSettings(new() { ["CloudEvents__Source"] = "urn:mambast:test-worker" }));
        await h.SendAsync(jobs, ct);

        foreach (var (name, sample) in new[] { ("dotnet", dotnet), ("python", python) })
        {
            (await sample.WaitForExitAsync(Patience, () => worker.Log)).ShouldBe(0, $"{name} subscriber:\n{sample.Output}");
            var stylized = sample.Lines.Where(l => l.StartsWith("stylized ", StringComparison.Ordinal)).ToArray();
            var failed = sample.Lines.Where(l => l.StartsWith("failed ", StringComparison.Ordinal)).ToArray();
            stylized.Length.ShouldBe(9, sample.Output);
            failed.Length.ShouldBe(1, sample.Output);
            failed[0].ShouldContain($"{corrupt.JobId} InvalidImage");
            stylized.Select(l => Guid.Parse(l.Split(' ')[1])).ShouldBe(jobs.Take(9).Select(j => j.JobId), ignoreOrder: true);
        }

        // What the worker really put on the wire: MassTransit envelopes via the batch headers exchange, CloudEvents via mambast.events.
        var envelopes = await rabbit.DrainAsync(Capture.MassTransitQueue, 10, ct);
        var cloudEvents = await rabbit.DrainAsync(Capture.CloudEventsQueue, 10, ct);
        envelopes.Count.ShouldBe(10);
        cloudEvents.Count.ShouldBe(10);
        foreach (var e in envelopes) e.Headers[EventHeaders.BatchId].ShouldBe(h.BatchId);
        foreach (var e in cloudEvents)
        {
            e.ContentType.ShouldStartWith(CloudEventsPublisher.StructuredContentType);
            e.Headers[EventHeaders.BatchId].ShouldBe(h.BatchId);
            var ce = JsonNode.Parse(e.Body)!;
            ce["specversion"]!.GetValue<string>().ShouldBe("1.0");
            ce["source"]!.GetValue<string>().ShouldBe("urn:mambast:test-worker");
            ce["subject"]!.GetValue<string>().ShouldBe(ce["data"]!["jobId"]!.GetValue<string>());
            e.RoutingKey.ShouldBe($"{ce["type"]!.GetValue<string>()}.{h.BatchId}");
        }

        cloudEvents.Select(e => JsonNode.Parse(e.Body)!["id"]!.GetValue<string>()).Distinct().Count().ShouldBe(10);
        cloudEvents.Count(e => e.RoutingKey.StartsWith(CloudEventsPublisher.FailedType, StringComparison.Ordinal)).ShouldBe(1);

        await Validator.ShouldValidateAsync(nameof(ImageStylized), envelopes.Where(e => e.Body.Contains("urn:message:MambaSt.Batch.Contracts:ImageStylized\"", StringComparison.Ordinal)), 9, ct);
        await Validator.ShouldValidateAsync(nameof(ImageStylizationFailed), envelopes.Where(e => e.Body.Contains("urn:message:MambaSt.Batch.Contracts:ImageStylizationFailed\"", StringComparison.Ordinal)), 1, ct);
        await Validator.ShouldValidateAsync(nameof(ImageStylized), cloudEvents.Where(e => e.RoutingKey.StartsWith(CloudEventsPublisher.StylizedType, StringComparison.Ordinal)), 9, ct);
        await Validator.ShouldValidateAsync(nameof(ImageStylizationFailed), cloudEvents.Where(e => e.RoutingKey.StartsWith(CloudEventsPublisher.FailedType, StringComparison.Ordinal)), 1, ct);

        await rabbit.DeleteQueuesAsync([$"mambast-sample-dotnet-{h.BatchId}", $"mambast-sample-python-{h.BatchId}"]);
    }

    [Fact]
    public async Task CloudEvents_off_publishes_none_and_the_MassTransit_events_still_flow()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var h = new PipelineHarness(services);
        await h.StartListeningAsync(ct);
        await using var rabbit = await Capture.StartAsync(services.RabbitMqUrl, h.BatchId, ct);
        var jobs = await h.UploadJobsAsync(2, 32, 32, ct);

        await using var worker = WorkerProcess.Start(h.WorkerSettings(new() { ["CloudEvents__Enabled"] = "false" }));
        await h.SendAsync(jobs, ct);
        await h.WaitForOutcomesAsync(2, Patience, () => worker.Log, ct);
        await Task.Delay(1000, ct);

        h.Completed.Count.ShouldBe(2);
        (await rabbit.DrainAsync(Capture.MassTransitQueue, 2, ct)).Count.ShouldBe(2);
        (await rabbit.CountAsync(Capture.CloudEventsQueue)).ShouldBe(0u);
    }

    [Fact]
    public async Task A_CloudEvent_the_broker_refuses_is_published_again_when_the_delivery_batch_is_retried()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var h = new PipelineHarness(services);
        await h.StartListeningAsync(ct);
        var exchange = $"mambast.events-{h.QueueName}";
        await using var rabbit = await Capture.StartAsync(services.RabbitMqUrl, h.BatchId, ct, exchange);
        // A full queue with overflow reject-publish makes the broker nack every CloudEvent routed to it.
        var blocker = $"blocker-{h.QueueName}";
        await rabbit.DeclareAsync(blocker, exchange, new() { ["x-max-length"] = 0, ["x-overflow"] = "reject-publish" });
        var jobs = await h.UploadJobsAsync(1, 32, 32, ct);

        await using var worker = WorkerProcess.Start(h.WorkerSettings(new() { ["CloudEvents__Exchange"] = exchange }));
        await h.SendAsync(jobs, ct);
        await h.WaitForOutcomesAsync(1, Patience, () => worker.Log, ct);
        await worker.WaitForLogAsync("not confirmed by the broker", Patience, ct);

        // The MassTransit event went out first; the refused CloudEvent failed the delivery batch, so the job was not
        // acknowledged. Once the broker accepts again, the retried batch publishes the CloudEvent.
        await rabbit.DeleteQueuesAsync([blocker]);
        await rabbit.DrainAsync(Capture.CloudEventsQueue, 0, ct); // copies routed before the unblock
        var after = await rabbit.DrainAsync(Capture.CloudEventsQueue, 1, ct, Patience);
        after.ShouldNotBeEmpty(worker.Log);
        after.ShouldAllBe(e => JsonNode.Parse(e.Body)!["subject"]!.GetValue<string>() == jobs[0].JobId.ToString("D"));
        h.Completed.ShouldNotBeEmpty();
        h.Completed.ShouldAllBe(c => c.JobId == jobs[0].JobId);
        h.Failed.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_CloudEvents_exchange_of_another_type_stops_the_worker_at_start()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var h = new PipelineHarness(services);
        await using var rabbit = await Capture.StartAsync(services.RabbitMqUrl, h.BatchId, ct); // declares it as a headers exchange
        await using var worker = WorkerProcess.Start(h.WorkerSettings(new() { ["CloudEvents__Exchange"] = BatchTopology.BatchEventsExchange }));
        var exit = await worker.WaitForExitAsync(Patience);
        exit.ShouldNotBe(0);
        worker.Log.ShouldContain($"CloudEvents:Exchange '{BatchTopology.BatchEventsExchange}' exists on the broker but is not a durable topic exchange");
    }

    private sealed record Captured(string Body, string? ContentType, string RoutingKey, Dictionary<string, string> Headers);

    /// <summary>Raw RabbitMQ.Client queues: one bound like a batch queue (MassTransit events), one to the CloudEvents exchange.</summary>
    private sealed class Capture : IAsyncDisposable
    {
        public const string MassTransitQueue = "mt";
        public const string CloudEventsQueue = "ce";

        private readonly IConnection _connection;
        private readonly IChannel _channel;
        private readonly Dictionary<string, string> _queues = new();

        private Capture(IConnection connection, IChannel channel)
        {
            _connection = connection;
            _channel = channel;
        }

        public static async Task<Capture> StartAsync(string url, string batchId, CancellationToken ct, string cloudEventsExchange = CloudEventsOptions.DefaultExchange)
        {
            var connection = await new ConnectionFactory { Uri = new Uri(url) }.CreateConnectionAsync(ct);
            var channel = await connection.CreateChannelAsync(cancellationToken: ct);
            var capture = new Capture(connection, channel);
            var id = Guid.NewGuid().ToString("N")[..8];

            // The topology `mambast submit` declares (batch headers exchange bound to the event exchanges).
            await channel.ExchangeDeclareAsync(BatchTopology.BatchEventsExchange, ExchangeType.Headers, durable: true, autoDelete: false, cancellationToken: ct);
            foreach (var exchange in BatchTopology.EventExchanges)
            {
                await channel.ExchangeDeclareAsync(exchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: ct);
                await channel.ExchangeBindAsync(BatchTopology.BatchEventsExchange, exchange, "", cancellationToken: ct);
            }

            var mt = (await channel.QueueDeclareAsync($"capture-mt-{id}", durable: false, exclusive: true, autoDelete: true, cancellationToken: ct)).QueueName;
            await channel.QueueBindAsync(mt, BatchTopology.BatchEventsExchange, "", new Dictionary<string, object?> { ["x-match"] = "all", [EventHeaders.BatchId] = batchId }, cancellationToken: ct);
            await channel.ExchangeDeclareAsync(cloudEventsExchange, ExchangeType.Topic, durable: true, autoDelete: false, cancellationToken: ct);
            var ce = (await channel.QueueDeclareAsync($"capture-ce-{id}", durable: false, exclusive: true, autoDelete: true, cancellationToken: ct)).QueueName;
            await channel.QueueBindAsync(ce, cloudEventsExchange, $"mambast.image.*.v1.{batchId}", cancellationToken: ct);
            capture._queues[MassTransitQueue] = mt;
            capture._queues[CloudEventsQueue] = ce;
            return capture;
        }

        public async Task<uint> CountAsync(string queue)
        {
            try
            {
                await using var channel = await _connection.CreateChannelAsync();
                return (await channel.QueueDeclarePassiveAsync(_queues.GetValueOrDefault(queue, queue))).MessageCount;
            }
            catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
            {
                return 0;
            }
        }

        /// <summary>Gets every message now in the queue, waiting up to 10 s for at least <paramref name="expected"/>.</summary>
        public async Task<List<Captured>> DrainAsync(string queue, int expected, CancellationToken ct, TimeSpan? patience = null)
        {
            var result = new List<Captured>();
            var deadline = DateTime.UtcNow + (patience ?? TimeSpan.FromSeconds(10));
            while (true)
            {
                var got = await _channel.BasicGetAsync(_queues[queue], autoAck: true, ct);
                if (got is null)
                {
                    if (result.Count >= expected || DateTime.UtcNow > deadline) return result;
                    await Task.Delay(100, ct);
                    continue;
                }

                var headers = (got.BasicProperties.Headers ?? new Dictionary<string, object?>())
                    .ToDictionary(kv => kv.Key, kv => kv.Value is byte[] b ? Encoding.UTF8.GetString(b) : kv.Value?.ToString() ?? "");
                result.Add(new Captured(Encoding.UTF8.GetString(got.Body.Span), got.BasicProperties.ContentType, got.RoutingKey, headers));
            }
        }

        public async Task DeclareAsync(string queue, string exchange, Dictionary<string, object?> arguments)
        {
            await using var channel = await _connection.CreateChannelAsync();
            await channel.QueueDeclareAsync(queue, durable: false, exclusive: false, autoDelete: false, arguments: arguments);
            await channel.QueueBindAsync(queue, exchange, "#");
        }

        public async Task DeleteQueuesAsync(IEnumerable<string> queues)
        {
            foreach (var q in queues)
            {
                await using var channel = await _connection.CreateChannelAsync();
                await channel.QueueDeleteAsync(q);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _channel.DisposeAsync();
            await _connection.DisposeAsync();
        }
    }

    private static class Validator
    {
        public static async Task ShouldValidateAsync(string messageName, IEnumerable<Captured> messages, int expected, CancellationToken ct)
        {
            var list = messages.ToList();
            list.Count.ShouldBe(expected, messageName);
            var folder = Directory.CreateTempSubdirectory("mambast-wire-");
            try
            {
                var files = new List<string>();
                for (var i = 0; i < list.Count; i++)
                {
                    var path = Path.Combine(folder.FullName, $"{messageName}-{i}.json");
                    await File.WriteAllTextAsync(path, list[i].Body, ct);
                    files.Add(path);
                }

                await using var validate = SampleProcess.Start("/usr/bin/python3", [Path.Combine(RepoPaths.Root, "contracts", "validate.py"), messageName, .. files]);
                (await validate.WaitForExitAsync(TimeSpan.FromSeconds(60), () => "")).ShouldBe(0, validate.Output);
                validate.Lines.Count(l => l.StartsWith("valid ", StringComparison.Ordinal)).ShouldBe(expected, validate.Output);
            }
            finally
            {
                folder.Delete(recursive: true);
            }
        }
    }
}
