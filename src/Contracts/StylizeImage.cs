namespace MambaSt.Batch.Contracts;

/// <summary>Command: stylize one content image with one style image and write the result.</summary>
/// <remarks>Carries references to storage locations, never pixels. Locations are
/// <c>az://container/path</c>, <c>https://account.blob.core.windows.net/container/path</c> or a local path.
/// Sent to the worker's queue (default <c>stylize-image</c>). Delivered at least once: <see cref="JobId"/> is
/// the idempotency key.</remarks>
public record StylizeImage
{
    /// <summary>Deterministic id: the same content, style and options give the same id.</summary>
    public required Guid JobId { get; init; }

    /// <summary>The batch this job belongs to; copied onto its outcome event and its <see cref="EventHeaders.BatchId"/> header.</summary>
    public required string BatchId { get; init; }

    /// <summary>The content image to stylize.</summary>
    public required string ContentRef { get; init; }

    /// <summary>The style image.</summary>
    public required string StyleRef { get; init; }

    /// <summary>Where the output is written, created only if absent.</summary>
    public required string OutputRef { get; init; }

    /// <summary>How to stylize and encode.</summary>
    public required StylizeOptions Options { get; init; }

    /// <summary>The caller's correlation id, copied onto the outcome event.</summary>
    public Guid? CorrelationId { get; init; }

    /// <summary>When the submitter sent the job.</summary>
    public DateTimeOffset? SubmittedAt { get; init; }
}
