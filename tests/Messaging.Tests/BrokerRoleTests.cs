using System.Diagnostics;
using System.Text;
using MambaSt.Batch.Contracts;
using MambaSt.Batch.Testing;
using MassTransit;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MambaSt.Batch.Messaging.Tests;

/// <summary>The users scripts/broker-roles.sh creates, against the real local broker (issue 22): each role can do its
/// own work through MassTransit, and the broker refuses (ACCESS_REFUSED) what belongs to another role.
/// Each test gets a fresh vhost and fresh users.</summary>
[Trait(TestTraits.Category, TestTraits.Integration)]
public class BrokerRoleTests(LocalServices services)
{
    private const string Queue = "stylize-image";
    private static readonly string[] EventExchanges = ["MambaSt.Batch.Contracts:ImageStylized", "MambaSt.Batch.Contracts:ImageStylizationFailed"];

    private sealed record Roles(string Vhost, string Prefix, string Password)
    {
        public string User(string role) => Prefix + role;
    }

    private async Task<Roles> CreateRolesAsync()
    {
        var id = Guid.NewGuid().ToString("N")[..10];
        var roles = new Roles($"mambast-roles-{id}", $"r{id}-", Guid.NewGuid().ToString("N"));
        var psi = new ProcessStartInfo("bash", [Path.Combine(RepoPaths.Root, "scripts", "broker-roles.sh"), "--vhost", roles.Vhost, "--prefix", roles.Prefix])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment["RABBITMQCTL"] = $"bash {services.ServicesScript} ctl";
        psi.Environment["MAMBAST_RABBITMQ_PORT"] = services.RabbitMqUri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        psi.Environment["MAMBAST_SUBMITTER_PASSWORD"] = roles.Password;
        psi.Environment["MAMBAST_WORKER_PASSWORD"] = roles.Password;
        psi.Environment["MAMBAST_SUBSCRIBER_PASSWORD"] = roles.Password;
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        process.ExitCode.ShouldBe(0, await stderr);
        return roles;
    }

    private Task<IConnection> ConnectAsync(Roles roles, string role) => new ConnectionFactory
    {
        HostName = services.RabbitMqUri.Host,
        Port = services.RabbitMqUri.Port,
        VirtualHost = roles.Vhost,
        UserName = roles.User(role),
        Password = roles.Password,
    }.CreateConnectionAsync(TestContext.Current.CancellationToken);

    private IBusControl Bus(Roles roles, string role, Action<IRabbitMqBusFactoryConfigurator>? configure = null) =>
        MassTransit.Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(services.RabbitMqUri.Host, (ushort)services.RabbitMqUri.Port, roles.Vhost, h =>
            {
                h.Username(roles.User(role));
                h.Password(roles.Password);
                h.PublisherConfirmation = true;
            });
            configure?.Invoke(cfg);
        });

    /// <summary>Runs <paramref name="action"/> on a fresh channel and asserts the broker closed it with 403 ACCESS_REFUSED.
    /// A publish is asynchronous: the passive declare afterwards is a round trip that surfaces the closure.</summary>
    private static async Task ShouldBeRefusedAsync(IConnection connection, Func<IChannel, Task> action)
    {
        var channel = await connection.CreateChannelAsync(cancellationToken: TestContext.Current.CancellationToken);
        await Should.ThrowAsync<Exception>(async () =>
        {
            await action(channel);
            await channel.ExchangeDeclarePassiveAsync("amq.fanout", TestContext.Current.CancellationToken);
        });
        channel.CloseReason.ShouldNotBeNull();
        ((int)channel.CloseReason.ReplyCode).ShouldBe(Constants.AccessRefused);
        channel.CloseReason.ReplyText.ShouldContain("ACCESS_REFUSED");
        await channel.DisposeAsync();
    }

    private static Task Publish(IChannel channel, string exchange, string routingKey = "") =>
        channel.BasicPublishAsync(exchange, routingKey, Encoding.UTF8.GetBytes("{}"), TestContext.Current.CancellationToken).AsTask();

    [Fact]
    public async Task The_submitter_credential_cannot_publish_an_event()
    {
        var roles = await CreateRolesAsync();
        await using var submitter = await ConnectAsync(roles, "submitter");

        foreach (var exchange in EventExchanges)
        {
            await ShouldBeRefusedAsync(submitter, async channel =>
            {
                // Declaring is allowed (submit binds its batch queue to these exchanges); writing is not.
                await channel.ExchangeDeclareAsync(exchange, ExchangeType.Fanout, durable: true, cancellationToken: TestContext.Current.CancellationToken);
                await Publish(channel, exchange);
            });
        }

        await ShouldBeRefusedAsync(submitter, channel => Publish(channel, "", "mambast-batch-anything"));
        await ShouldBeRefusedAsync(submitter, channel => Publish(channel, "MassTransit:Fault--MambaSt.Batch.Contracts:StylizeImage--"));
    }

    [Fact]
    public async Task The_subscriber_credential_cannot_publish_a_job_or_an_event()
    {
        var roles = await CreateRolesAsync();
        await using var subscriber = await ConnectAsync(roles, "subscriber");

        await ShouldBeRefusedAsync(subscriber, channel => Publish(channel, Queue));
        await ShouldBeRefusedAsync(subscriber, channel => Publish(channel, "MambaSt.Batch.Contracts:StylizeImage"));
        await ShouldBeRefusedAsync(subscriber, channel => Publish(channel, "", Queue));
        await ShouldBeRefusedAsync(subscriber, channel => Publish(channel, EventExchanges[0]));
        await ShouldBeRefusedAsync(subscriber, channel => channel.BasicGetAsync(Queue, autoAck: false, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Each_role_does_its_own_work_submitter_sends_worker_consumes_and_publishes_subscriber_and_batch_queue_read()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(90));
        var ct = timeout.Token;
        var roles = await CreateRolesAsync();
        var batchId = "roles-" + Guid.NewGuid().ToString("N")[..8];
        var received = new TaskCompletionSource<ImageStylized>(TaskCreationOptions.RunContinuationsAsynchronously);

        var worker = Bus(roles, "worker", cfg => cfg.ReceiveEndpoint(Queue, e => e.Consumer(() => new EchoStylizer())));
        var subscriber = Bus(roles, "subscriber", cfg => cfg.ReceiveEndpoint("mambast-events-test", e => e.Handler<ImageStylized>(ctx =>
        {
            received.TrySetResult(ctx.Message);
            return Task.CompletedTask;
        })));
        var submitter = Bus(roles, "submitter");
        await worker.StartAsync(ct);
        await subscriber.StartAsync(ct);
        await submitter.StartAsync(ct);
        try
        {
            // What submit's BatchTopology declares for watch, with the submitter's credential.
            await using var submitterConnection = await ConnectAsync(roles, "submitter");
            await using var batch = await submitterConnection.CreateChannelAsync(cancellationToken: ct);
            var batchQueue = $"mambast-batch-{batchId}";
            await batch.ExchangeDeclareAsync("mambast-batch-events", ExchangeType.Headers, durable: true, cancellationToken: ct);
            foreach (var exchange in EventExchanges)
            {
                await batch.ExchangeDeclareAsync(exchange, ExchangeType.Fanout, durable: true, cancellationToken: ct);
                await batch.ExchangeBindAsync("mambast-batch-events", exchange, "", cancellationToken: ct);
            }

            await batch.QueueDeclareAsync(batchQueue, durable: true, exclusive: false, autoDelete: false,
                arguments: new Dictionary<string, object?> { ["x-expires"] = 60_000L }, cancellationToken: ct);
            await batch.QueueBindAsync(batchQueue, "mambast-batch-events", "",
                new Dictionary<string, object?> { ["x-match"] = "all", [EventHeaders.BatchId] = batchId }, cancellationToken: ct);

            var endpoint = await submitter.GetSendEndpoint(new Uri($"queue:{Queue}"));
            var jobId = Guid.NewGuid();
            await endpoint.Send(new StylizeImage
            {
                JobId = jobId,
                BatchId = batchId,
                ContentRef = "az://inputs/a.jpg",
                StyleRef = "az://styles/s.jpg",
                OutputRef = "az://outputs/a.jpg",
                Options = new StylizeOptions(),
            }, ct);

            (await received.Task.WaitAsync(ct)).JobId.ShouldBe(jobId);
            BasicGetResult? fromBatchQueue = null;
            while (fromBatchQueue is null)
            {
                ct.ThrowIfCancellationRequested();
                fromBatchQueue = await batch.BasicGetAsync(batchQueue, autoAck: true, ct);
                if (fromBatchQueue is null) await Task.Delay(100, ct);
            }

            Encoding.UTF8.GetString(fromBatchQueue.Body.Span).ShouldContain(jobId.ToString());

            // The worker's delayed redelivery: a TTL queue dead-lettering into the input exchange, fed through amq.default.
            await using var workerConnection = await ConnectAsync(roles, "worker");
            await using var delay = await workerConnection.CreateChannelAsync(cancellationToken: ct);
            await delay.QueueDeclareAsync($"{Queue}-delay-5s", durable: true, exclusive: false, autoDelete: false,
                arguments: new Dictionary<string, object?> { ["x-message-ttl"] = 5000L, ["x-dead-letter-exchange"] = Queue }, cancellationToken: ct);
            await Publish(delay, "", $"{Queue}-delay-5s");
            await delay.QueueDeclarePassiveAsync($"{Queue}-delay-5s", ct);
        }
        finally
        {
            await submitter.StopAsync(CancellationToken.None);
            await subscriber.StopAsync(CancellationToken.None);
            await worker.StopAsync(CancellationToken.None);
        }
    }

    private sealed class EchoStylizer : IConsumer<StylizeImage>
    {
        public Task Consume(ConsumeContext<StylizeImage> context) =>
            context.Publish(new ImageStylized
            {
                JobId = context.Message.JobId,
                BatchId = context.Message.BatchId,
                OutputRef = context.Message.OutputRef,
                Width = 1,
                Height = 1,
                OutputBytes = 1,
                Timings = new StageTimings(),
                ModelId = "none",
                ModelVersion = "0",
                WorkerId = nameof(EchoStylizer),
            }, p => p.Headers.Set(EventHeaders.BatchId, context.Message.BatchId));
    }
}
