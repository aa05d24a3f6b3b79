namespace MambaSt.Batch.Contracts;

/// <summary>Event: a job's output exists in storage.</summary>
/// <remarks>Published at least once per job: a redelivered or resubmitted job publishes it again (with
/// <see cref="Reused"/> true). Deduplicate on <see cref="JobId"/>.</remarks>
public record ImageStylized
{
    /// <summary>The job's id (the idempotency key).</summary>
    public required Guid JobId { get; init; }

    /// <summary>The job's batch; also in the header <see cref="EventHeaders.BatchId"/>.</summary>
    public required string BatchId { get; init; }

    /// <summary>Where the output was written (the command's OutputRef, without any SAS signature).</summary>
    public required string OutputRef { get; init; }

    /// <summary>The output's width in pixels.</summary>
    public required int Width { get; init; }

    /// <summary>The output's height in pixels.</summary>
    public required int Height { get; init; }

    /// <summary>The output's size in bytes.</summary>
    public required long OutputBytes { get; init; }

    /// <summary>Time spent per pipeline stage.</summary>
    public required StageTimings Timings { get; init; }

    /// <summary>The model's id (from its metadata).</summary>
    public required string ModelId { get; init; }

    /// <summary>The model's version (from its metadata).</summary>
    public required string ModelVersion { get; init; }

    /// <summary>The worker that handled the job.</summary>
    public required string WorkerId { get; init; }

    /// <summary>True when the output already existed (redelivery or resubmission) and nothing was computed.</summary>
    public bool Reused { get; init; }

    /// <summary>The command's correlation id.</summary>
    public Guid? CorrelationId { get; init; }

    /// <summary>When the output was written (or found).</summary>
    public DateTimeOffset CompletedAt { get; init; }

    /// <summary>Cheap checks of the output's pixels, so a report can flag broken outputs without opening them;
    /// null when nothing was computed (a reused output) or from workers older than this field.</summary>
    public OutputQuality? Quality { get; init; }
}

/// <summary>Pixel statistics of one output, measured by the worker on the inference result.</summary>
public record OutputQuality
{
    /// <summary>Standard deviation of luma (BT.601, 0-255) over the output; near 0 means a nearly uniform image.</summary>
    public required double LumaStdDev { get; init; }

    /// <summary>Mean absolute difference per channel (0-255) between the output and the content at the same size;
    /// 0 means the output is the content unchanged.</summary>
    public required double ContentDifference { get; init; }
}

/// <summary>Milliseconds spent per pipeline stage for one job.</summary>
public record StageTimings
{
    /// <summary>Reading content and style from storage.</summary>
    public double FetchMs { get; init; }

    /// <summary>Decoding the images.</summary>
    public double DecodeMs { get; init; }

    /// <summary>Encoding the style (0 when the style cache had it).</summary>
    public double StyleEncodeMs { get; init; }

    /// <summary>The model run.</summary>
    public double InferenceMs { get; init; }

    /// <summary>Encoding the output image.</summary>
    public double EncodeMs { get; init; }

    /// <summary>Writing the output to storage.</summary>
    public double WriteMs { get; init; }

    /// <summary>End to end.</summary>
    public double TotalMs { get; init; }
}
