using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Storage;

public enum StorageErrorKind
{
    NotFound,
    AlreadyExists,
    Forbidden,
    InvalidName,
    InvalidRequest,
    NotConfigured,
    Unavailable,
    Timeout,

    /// <summary>The location is outside what Storage:AllowedLocalRoots, AllowedAccounts or AllowedHosts permit (see <see cref="LocationPolicy"/>).</summary>
    NotAllowed,
}

/// <summary>A storage failure with its kind, the job error code it maps to, and whether trying again may help.
/// Messages name the container and blob, never a key, SAS signature or connection string.</summary>
public sealed class StorageException : Exception
{
    public StorageException(StorageErrorKind kind, string message, int? status = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
        Status = status;
    }

    public StorageErrorKind Kind { get; }

    /// <summary>The HTTP status that caused it, when there was one.</summary>
    public int? Status { get; }

    public bool IsTransient => Kind is StorageErrorKind.Unavailable or StorageErrorKind.Timeout;

    public StylizationErrorCode ErrorCode => Kind switch
    {
        StorageErrorKind.NotFound or StorageErrorKind.InvalidName => StylizationErrorCode.NotFound,
        StorageErrorKind.Timeout => StylizationErrorCode.Timeout,
        StorageErrorKind.NotAllowed => StylizationErrorCode.InvalidRequest,
        _ => StylizationErrorCode.StorageUnavailable,
    };
}
