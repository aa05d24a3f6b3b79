namespace MambaSt.Batch.Contracts;

/// <summary>Event: a job ended without an output. Published once per job, after retries are spent
/// (transient errors) or at once (permanent errors).</summary>
public record ImageStylizationFailed
{
    public required Guid JobId { get; init; }

    public required string BatchId { get; init; }

    public required StylizationErrorCode ErrorCode { get; init; }

    public required string Message { get; init; }

    public required int AttemptCount { get; init; }

    /// <summary>True when the cause was transient (storage, timeouts): submitting again may succeed.</summary>
    public required bool Transient { get; init; }

    public string? WorkerId { get; init; }

    public Guid? CorrelationId { get; init; }

    public DateTimeOffset FailedAt { get; init; }
}

/// <summary>The closed set of reasons a job can fail.</summary>
public enum StylizationErrorCode
{
    InvalidImage,
    ImageTooLarge,
    NotFound,
    StorageUnavailable,
    ModelError,
    Timeout,
    Canceled,

    /// <summary>The message itself is unusable (no options, unknown output format, strength not a number,
    /// empty locations); sending it again cannot help.</summary>
    InvalidRequest,

    /// <summary>The broker dead-lettered the job after its delivery limit: every worker that took it stopped
    /// (crashed, was killed, timed out) before answering it. AttemptCount is the broker's delivery count.
    /// Not retried automatically; a person decides (the message stays in the quarantine queue until its TTL).</summary>
    Quarantined,
}
