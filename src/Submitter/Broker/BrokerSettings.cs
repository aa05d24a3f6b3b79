namespace MambaSt.Batch.Submitter.Broker;

/// <summary>Which RabbitMQ to use and the worker's queue. From --broker, else Broker__Url, else amqp://localhost:5672/.</summary>
public sealed record BrokerSettings
{
    public const string DefaultUrl = "amqp://guest:guest@localhost:5672/";

    public const string DefaultQueue = "stylize-image";

    public required Uri Url { get; init; }

    public string Queue { get; init; } = DefaultQueue;

    public static BrokerSettings Resolve(string? broker, string? queue)
    {
        var text = !string.IsNullOrWhiteSpace(broker) ? broker : Environment.GetEnvironmentVariable("Broker__Url");
        if (string.IsNullOrWhiteSpace(text)) text = DefaultUrl;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps" or "rabbitmq" or "rabbitmqs"))
        {
            throw new UsageException($"broker URL '{Redact(text)}' is not an amqp:// or amqps:// URL (from --broker or Broker__Url)");
        }

        var q = string.IsNullOrWhiteSpace(queue) ? Environment.GetEnvironmentVariable("Worker__QueueName") : queue;
        return new BrokerSettings { Url = uri, Queue = string.IsNullOrWhiteSpace(q) ? DefaultQueue : q };
    }

    /// <summary>The URL without its password, for messages.</summary>
    public string Display => Redact(Url.ToString());

    public static string Redact(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var u) && u.UserInfo.Contains(':')
            ? url.Replace(u.UserInfo, u.UserInfo[..u.UserInfo.IndexOf(':')] + ":***", StringComparison.Ordinal)
            : url;
}
