using System.ComponentModel.DataAnnotations;

namespace MambaSt.Batch.Processing;

/// <summary>The worker's CloudEvents copies of its outcome events. Section "CloudEvents".</summary>
public sealed class CloudEventsOptions
{
    public const string Section = "CloudEvents";

    public const string DefaultExchange = "mambast.events";

    /// <summary>Publish each ImageStylized / ImageStylizationFailed also as a CloudEvent. On by default.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The topic exchange the CloudEvents go to (declared durable if absent).</summary>
    [Required, RegularExpression("^[A-Za-z0-9._:-]+$", ErrorMessage = "CloudEvents:Exchange may contain letters, digits, '.', '_', ':' and '-' only.")]
    public string Exchange { get; set; } = DefaultExchange;

    /// <summary>The CloudEvents <c>source</c>; default <c>urn:mambast:worker:&lt;Worker:WorkerId&gt;</c>.</summary>
    public string? Source { get; set; }
}
