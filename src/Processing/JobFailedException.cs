using MambaSt.Batch.Contracts;
using MambaSt.Batch.Storage;

namespace MambaSt.Batch.Processing;

/// <summary>A job-level failure with its error code; transient ones may succeed when retried.</summary>
public sealed class JobFailedException(StylizationErrorCode code, bool transient, string message, Exception? inner = null)
    : Exception(StorageLocation.RedactSecrets(message), inner)
{
    public StylizationErrorCode Code { get; } = code;

    public bool Transient { get; } = transient;
}
