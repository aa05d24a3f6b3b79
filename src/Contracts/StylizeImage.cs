namespace MambaSt.Batch.Contracts;

/// <summary>Command: stylize one content image with one style image and write the result.</summary>
/// <remarks>Carries references to storage locations, never pixels. Locations are
/// <c>az://container/path</c>, <c>https://account.blob.core.windows.net/container/path</c> or a local path.</remarks>
public record StylizeImage
{
    /// <summary>Deterministic id: the same content, style and options give the same id.</summary>
    public required Guid JobId { get; init; }

    public required string BatchId { get; init; }

    public required string ContentRef { get; init; }

    public required string StyleRef { get; init; }

    /// <summary>Where the output is written, created only if absent.</summary>
    public required string OutputRef { get; init; }

    public required StylizeOptions Options { get; init; }

    public Guid? CorrelationId { get; init; }

    public DateTimeOffset? SubmittedAt { get; init; }
}
