namespace MambaSt.Batch.Contracts;

/// <summary>Transport headers that are part of the wire contract.</summary>
public static class EventHeaders
{
    /// <summary>On every ImageStylized and ImageStylizationFailed: the job's BatchId. A batch's watch queue
    /// is bound on it (headers exchange), so it receives its own batch's events only.</summary>
    public const string BatchId = "mambast-batch-id";
}
