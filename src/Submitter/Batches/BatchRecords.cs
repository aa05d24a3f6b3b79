using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Submitter.Batches;

/// <summary>Where a batch keeps its records, relative to the output location.</summary>
public static class BatchPaths
{
    public const string Root = "_mambast";

    public static string Folder(string batchId) => $"{Root}/batches/{batchId}/";

    public static string Batch(string batchId) => Folder(batchId) + "batch.json";

    public static string Jobs(string batchId) => Folder(batchId) + "jobs.jsonl";

    public static string Enqueued(string batchId, string runId) => Folder(batchId) + $"enqueued-{runId}.jsonl";

    public static string Events(string batchId, string runId) => Folder(batchId) + $"events-{runId}.jsonl";

    public static string WatchQueue(string batchId) => $"mambast-batch-{batchId}";

    public static string RunId() => DateTimeOffset.UtcNow.ToString("yyyyMMddTHHmmssfff") + "-" + Guid.NewGuid().ToString("N")[..6];
}

/// <summary>What a batch is: written once by the first <c>submit</c>.</summary>
public sealed record BatchInfo
{
    public required string BatchId { get; init; }

    public required string Source { get; init; }

    public required string Output { get; init; }

    public required string StyleRef { get; init; }

    public required StylizeOptions Options { get; init; }

    public required string Queue { get; init; }

    public DateTimeOffset CreatedAt { get; init; }
}

/// <summary>One line of <c>jobs.jsonl</c>: a job of the batch, written before it is published.</summary>
public sealed record JobRecord
{
    public required Guid JobId { get; init; }

    public required string RelativePath { get; init; }

    public required string ContentRef { get; init; }

    public required string OutputRef { get; init; }

    public required string OutputPath { get; init; }
}

/// <summary>One line of <c>enqueued-*.jsonl</c>: the broker confirmed the job's message.</summary>
public sealed record EnqueuedRecord
{
    public required Guid JobId { get; init; }

    public DateTimeOffset At { get; init; }

    /// <summary><c>retry-failed</c>: the time stamp of the failure this send retries; the job is pending again (see <see cref="OutcomeRecord.RetryOf"/>).</summary>
    public DateTimeOffset? RetryOf { get; init; }
}

public enum JobStatus
{
    Pending,
    Done,
    Failed,
}

/// <summary>One line of <c>events-*.jsonl</c>: an outcome seen by <c>watch</c>.</summary>
public sealed record OutcomeRecord
{
    public required Guid JobId { get; init; }

    public required JobStatus Status { get; init; }

    public string? OutputRef { get; init; }

    public StageTimings? Timings { get; init; }

    public StylizationErrorCode? ErrorCode { get; init; }

    public string? Message { get; init; }

    public bool Transient { get; init; }

    public string? WorkerId { get; init; }

    public string? ModelId { get; init; }

    public string? ModelVersion { get; init; }

    /// <summary>The output already existed; nothing was computed.</summary>
    public bool Reused { get; init; }

    public OutputQuality? Quality { get; init; }

    public DateTimeOffset At { get; init; }

    /// <summary>
    /// Set on the pending outcome of a job that <c>retry-failed</c> sent again: the <see cref="At"/> of the failure it
    /// retried. It outranks that failure and earlier ones, and any later failure outranks it; the worker's time stamps
    /// are compared with each other only, never with the submitter's clock.
    /// </summary>
    public DateTimeOffset? RetryOf { get; init; }

    public static OutcomeRecord From(ImageStylized e) => new()
    {
        JobId = e.JobId, Status = JobStatus.Done, OutputRef = e.OutputRef, Timings = e.Timings,
        WorkerId = e.WorkerId, ModelId = e.ModelId, ModelVersion = e.ModelVersion, Reused = e.Reused, Quality = e.Quality, At = e.CompletedAt == default ? DateTimeOffset.UtcNow : e.CompletedAt,
    };

    public static OutcomeRecord From(ImageStylizationFailed e) => new()
    {
        JobId = e.JobId, Status = JobStatus.Failed, ErrorCode = e.ErrorCode, Message = e.Message,
        Transient = e.Transient, WorkerId = e.WorkerId, At = e.FailedAt == default ? DateTimeOffset.UtcNow : e.FailedAt,
    };
}
