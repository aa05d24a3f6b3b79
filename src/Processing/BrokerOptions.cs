using System.ComponentModel.DataAnnotations;

namespace MambaSt.Batch.Processing;

/// <summary>RabbitMQ connection. Section "Broker". Put the password in Broker__Password (env or secret), never in appsettings.</summary>
public sealed class BrokerOptions : IValidatableObject
{
    public const string Section = "Broker";

    [Required(ErrorMessage = "Broker:Url is required, e.g. amqp://rabbitmq:5672/")]
    public string Url { get; set; } = "";

    public string? Username { get; set; }

    public string? Password { get; set; }

    /// <summary>The URL as given (MassTransit takes amqp, amqps, rabbitmq and rabbitmqs).</summary>
    public Uri ToUri() => new(Url);

    /// <summary>The URL for RabbitMQ.Client, which knows only amqp and amqps: rabbitmq(s) mapped to amqp(s).</summary>
    public Uri ToAmqpUri()
    {
        var builder = new UriBuilder(ToUri());
        builder.Scheme = builder.Scheme switch { "rabbitmq" => "amqp", "rabbitmqs" => "amqps", var s => s };
        return builder.Uri;
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Uri.TryCreate(Url, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps" or "rabbitmq" or "rabbitmqs"))
        {
            yield return new ValidationResult($"Broker:Url must be an amqp://, amqps://, rabbitmq:// or rabbitmqs:// URL, got '{Redact(Url)}'", [nameof(Url)]);
        }
    }

    /// <summary>The URL without its password, for logs and errors.</summary>
    public static string Redact(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.UserInfo.Contains(':')
            ? url.Replace(uri.UserInfo, uri.UserInfo[..uri.UserInfo.IndexOf(':')] + ":***", StringComparison.Ordinal)
            : url;
}
