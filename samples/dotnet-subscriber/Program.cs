// Follows one batch and prints each job's outcome, once per job.
//   dotnet run --project samples/dotnet-subscriber -- --batch <id> [--broker amqp://guest:guest@localhost:5672/] [--expect N]
// With --expect it exits 0 after N distinct jobs had an outcome.
using System.Collections.Concurrent;
using MambaSt.Batch.Contracts;
using MassTransit;
using RabbitMQ.Client;

var options = Args.Parse(args);
if (options is null)
{
    Console.Error.WriteLine("usage: --batch <id> [--broker <amqp url>] [--expect <n>] [--queue <name>]");
    return 2;
}

// The events reach batch queues through one headers exchange, bound to the two event exchanges. `mambast submit`
// declares this too; declaring it here (idempotent) lets the subscriber start first.
await Topology.EnsureAsync(options.Broker);

var seen = new ConcurrentDictionary<Guid, string>();
var done = new TaskCompletionSource();
var print = new Lock();

void Outcome(Guid jobId, string line)
{
    if (!seen.TryAdd(jobId, line))
    {
        // At-least-once delivery: a redelivered job publishes its outcome again. JobId is the idempotency key.
        Console.Error.WriteLine($"duplicate {jobId} ignored");
        return;
    }

    lock (print) Console.WriteLine(line);
    if (options.Expect is { } n && seen.Count >= n) done.TrySetResult();
}

var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
{
    cfg.Host(options.Broker);
    cfg.ReceiveEndpoint(options.Queue, e =>
    {
        e.ConfigureConsumeTopology = false;
        e.SetQueueArgument("x-expires", (long)TimeSpan.FromDays(1).TotalMilliseconds);
        e.Bind(Topology.BatchEventsExchange, b =>
        {
            b.ExchangeType = ExchangeType.Headers;
            b.Durable = true;
            b.SetBindingArgument("x-match", "all");
            b.SetBindingArgument(EventHeaders.BatchId, options.BatchId);
        });
        e.Handler<ImageStylized>(ctx =>
        {
            var m = ctx.Message;
            Outcome(m.JobId, $"stylized {m.JobId} {m.Width}x{m.Height} {m.OutputRef}{(m.Reused ? " (reused)" : "")}");
            return Task.CompletedTask;
        });
        e.Handler<ImageStylizationFailed>(ctx =>
        {
            var m = ctx.Message;
            Outcome(m.JobId, $"failed {m.JobId} {m.ErrorCode} transient={m.Transient} attempts={m.AttemptCount}: {m.Message}");
            return Task.CompletedTask;
        });
    });
});

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
await bus.StartAsync(cancel.Token);
lock (print) Console.WriteLine($"listening queue={options.Queue} batch={options.BatchId}");
try
{
    await done.Task.WaitAsync(cancel.Token);
}
catch (OperationCanceledException)
{
}
finally
{
    await bus.StopAsync(CancellationToken.None);
}

lock (print) Console.WriteLine($"outcomes={seen.Count}");
return 0;

internal sealed record Args(Uri Broker, string BatchId, int? Expect, string Queue)
{
    public static Args? Parse(string[] args)
    {
        string? Value(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        var batch = Value("--batch");
        if (string.IsNullOrWhiteSpace(batch)) return null;
        var broker = Value("--broker") ?? Environment.GetEnvironmentVariable("Broker__Url") ?? "amqp://guest:guest@localhost:5672/";
        int? expect = int.TryParse(Value("--expect"), out var n) ? n : null;
        return new Args(new Uri(broker), batch, expect, Value("--queue") ?? $"mambast-sample-dotnet-{batch}");
    }
}

internal static class Topology
{
    public const string BatchEventsExchange = "mambast-batch-events";

    public static async Task EnsureAsync(Uri broker)
    {
        var amqp = new UriBuilder(broker) { Scheme = broker.Scheme.Replace("rabbitmq", "amqp", StringComparison.Ordinal) }.Uri;
        await using var connection = await new ConnectionFactory { Uri = amqp }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        await channel.ExchangeDeclareAsync(BatchEventsExchange, ExchangeType.Headers, durable: true, autoDelete: false);
        foreach (var exchange in new[] { "MambaSt.Batch.Contracts:ImageStylized", "MambaSt.Batch.Contracts:ImageStylizationFailed" })
        {
            await channel.ExchangeDeclareAsync(exchange, ExchangeType.Fanout, durable: true, autoDelete: false);
            await channel.ExchangeBindAsync(BatchEventsExchange, exchange, "");
        }
    }
}
