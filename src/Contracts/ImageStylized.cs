namespace MambaSt.Batch.Contracts;

/// <summary>Event: a job's output exists in storage.</summary>
public record ImageStylized
{
    public required Guid JobId { get; init; }

    public required string BatchId { get; init; }

    public required string OutputRef { get; init; }

    public required int Width { get; init; }

    public required int Height { get; init; }

    public required long OutputBytes { get; init; }

    public required StageTimings Timings { get; init; }

    public required string ModelId { get; init; }

    public required string ModelVersion { get; init; }

    public required string WorkerId { get; init; }

    /// <summary>True when the output already existed (redelivery or resubmission) and nothing was computed.</summary>
    public bool Reused { get; init; }

    public Guid? CorrelationId { get; init; }

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
    public double FetchMs { get; init; }

    public double DecodeMs { get; init; }

    public double StyleEncodeMs { get; init; }

    public double InferenceMs { get; init; }

    public double EncodeMs { get; init; }

    public double WriteMs { get; init; }

    public double TotalMs { get; init; }
}
