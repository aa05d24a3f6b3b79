namespace MambaSt.Batch.Submitter.Storage;

/// <summary>One input found under a source location.</summary>
/// <param name="RelativePath">Path under the source root, '/'-separated.</param>
/// <param name="Identity">Content identity for job ids; null for local files until hashed.</param>
public sealed record ArchiveItem(string RelativePath, long Size, string Ref, string? Identity);

/// <summary>
/// A folder-like view of one storage location (a local folder or a blob prefix), addressed by paths
/// relative to it. Implementations are safe to call concurrently.
/// </summary>
public interface IArchiveStore
{
    /// <summary>The location string this store is rooted at, as the user gave it.</summary>
    string Location { get; }

    bool IsLocal { get; }

    /// <summary>The reference carried in messages for <paramref name="relativePath"/>.</summary>
    string RefFor(string relativePath);

    IAsyncEnumerable<ArchiveItem> ListAsync(string relativePrefix, CancellationToken cancellationToken);

    /// <summary>The item's content identity (blob: name, size, ETag/MD5; local: SHA-256 of the bytes).</summary>
    Task<string> IdentifyAsync(ArchiveItem item, CancellationToken cancellationToken);

    Task<bool> ExistsAsync(string relativePath, CancellationToken cancellationToken);

    /// <summary>The metadata stored with a file (blob metadata; a local folder's sidecar, as the worker writes it), an
    /// empty map when it has none, or null when the file does not exist.</summary>
    Task<IReadOnlyDictionary<string, string>?> ReadMetadataAsync(string relativePath, CancellationToken cancellationToken);

    /// <summary>Deletes a file and its metadata (<c>--overwrite</c>); false when it was not there.</summary>
    Task<bool> DeleteAsync(string relativePath, CancellationToken cancellationToken);

    /// <summary>The whole text of a small file, or null when it does not exist.</summary>
    Task<string?> ReadTextAsync(string relativePath, CancellationToken cancellationToken);

    /// <summary>The lines of a file, streamed (never the whole file as one string); none when it does not exist.</summary>
    IAsyncEnumerable<string> ReadLinesAsync(string relativePath, CancellationToken cancellationToken);

    /// <summary>
    /// Appends whole lines (<paramref name="lines"/> ends with '\n') to an append-only record, durably before it
    /// returns. A local folder appends to the file and fsyncs it. Blob storage has no append through this store, so
    /// each append is a new numbered segment blob beside it (<c>name.000001.jsonl</c>, ...), written create-if-absent:
    /// readers list the record's prefix. Only one writer (one process) appends to a given record.
    /// </summary>
    Task AppendLinesAsync(string relativePath, string lines, CancellationToken cancellationToken);

    /// <summary>Writes (replaces) a small text file.</summary>
    Task WriteTextAsync(string relativePath, string text, CancellationToken cancellationToken);

    /// <summary>Copies <paramref name="localFile"/> to <paramref name="relativePath"/> unless something is there; true when written.</summary>
    Task<bool> UploadIfAbsentAsync(string relativePath, string localFile, CancellationToken cancellationToken);
}
