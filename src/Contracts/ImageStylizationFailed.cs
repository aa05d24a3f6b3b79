namespace MambaSt.Batch.Contracts;

/// <summary>Event: a job ended without an output. Published once per job, after retries are spent
/// (transient errors) or at once (permanent errors).</summary>
/// <remarks>Delivery is at least once: deduplicate on <see cref="JobId"/>.</remarks>
public record ImageStylizationFailed
{
    /// <summary>The job's id (the idempotency key).</summary>
    public required Guid JobId { get; init; }

    /// <summary>The job's batch; also in the header <see cref="EventHeaders.BatchId"/>.</summary>
    public required string BatchId { get; init; }

    /// <summary>Why the job failed.</summary>
    public required StylizationErrorCode ErrorCode { get; init; }

    /// <summary>A human-readable explanation (SAS signatures redacted).</summary>
    public required string Message { get; init; }

    /// <summary>Deliveries of the job, 1 for a failure on its first delivery.</summary>
    public required int AttemptCount { get; init; }

    /// <summary>True when the cause was transient (storage, timeouts): submitting again may succeed.</summary>
    public required bool Transient { get; init; }

    /// <summary>The worker that handled the job.</summary>
    public string? WorkerId { get; init; }

    /// <summary>The command's correlation id.</summary>
    public Guid? CorrelationId { get; init; }

    /// <summary>When the job failed.</summary>
    public DateTimeOffset FailedAt { get; init; }
}

/// <summary>The closed set of reasons a job can fail. On the wire as the member's number (<c>InvalidImage</c> = 0): never renumber.
/// New codes may be added in a minor version: treat an unknown code as a permanent failure.</summary>
public enum StylizationErrorCode
{
    /// <summary>Content or style is not a decodable image (corrupt, truncated, unsupported format). Permanent.</summary>
    InvalidImage,

    /// <summary>An input exceeds the worker's limits (bytes or pixels). Permanent.</summary>
    ImageTooLarge,

    /// <summary>Content or style does not exist in storage. Permanent.</summary>
    NotFound,

    /// <summary>Storage could not be reached or refused (after retries and redeliveries). Transient.</summary>
    StorageUnavailable,

    /// <summary>The model failed to run on the job (ONNX Runtime error). Transient after redeliveries.</summary>
    ModelError,

    /// <summary>The job took longer than the worker's job timeout, or a storage call timed out. Transient.</summary>
    Timeout,

    /// <summary>Reserved: not produced by this version (a job interrupted by worker shutdown returns to the queue).</summary>
    Canceled,

    /// <summary>The message itself is unusable (no options, unknown output format, strength not a number,
    /// empty locations); sending it again cannot help.</summary>
    InvalidRequest,

    /// <summary>The broker dead-lettered the job after its delivery limit: every worker that took it stopped
    /// (crashed, was killed, timed out) before answering it. AttemptCount is the broker's delivery count.
    /// Not retried automatically; a person decides (the message stays in the quarantine queue until its TTL).</summary>
    Quarantined,
}
