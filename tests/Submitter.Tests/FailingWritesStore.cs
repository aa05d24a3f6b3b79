using MambaSt.Batch.Submitter.Storage;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary>The real store, except that the first <paramref name="failures"/> writes of the files <paramref name="matches"/>
/// picks throw an <see cref="IOException"/> (a storage outage, a full disk).</summary>
internal sealed class FailingWritesStore(IArchiveStore inner, Func<string, bool> matches, int failures = int.MaxValue) : IArchiveStore
{
    private int _attempts;
    private int _failed;

    /// <summary>The first <paramref name="failures"/> writes of an enqueued-&lt;run&gt;.jsonl record fail.</summary>
    public static FailingWritesStore EnqueuedRecord(IArchiveStore inner, int failures) =>
        new(inner, path => path.Contains("/enqueued-", StringComparison.Ordinal), failures);

    /// <summary>Writes of matching files so far, failed or not.</summary>
    public int Attempts => Volatile.Read(ref _attempts);

    public int Failed => Volatile.Read(ref _failed);

    public string Location => inner.Location;

    public bool IsLocal => inner.IsLocal;

    public string RefFor(string relativePath) => inner.RefFor(relativePath);

    public IAsyncEnumerable<ArchiveItem> ListAsync(string relativePrefix, CancellationToken cancellationToken) => inner.ListAsync(relativePrefix, cancellationToken);

    public Task<string> IdentifyAsync(ArchiveItem item, CancellationToken cancellationToken) => inner.IdentifyAsync(item, cancellationToken);

    public Task<bool> ExistsAsync(string relativePath, CancellationToken cancellationToken) => inner.ExistsAsync(relativePath, cancellationToken);

    public Task<IReadOnlyDictionary<string, string>?> ReadMetadataAsync(string relativePath, CancellationToken cancellationToken) => inner.ReadMetadataAsync(relativePath, cancellationToken);

    public Task<bool> DeleteAsync(string relativePath, CancellationToken cancellationToken) => inner.DeleteAsync(relativePath, cancellationToken);

    public Task<string?> ReadTextAsync(string relativePath, CancellationToken cancellationToken) => inner.ReadTextAsync(relativePath, cancellationToken);

    public Task WriteTextAsync(string relativePath, string text, CancellationToken cancellationToken)
    {
        if (matches(relativePath) && Interlocked.Increment(ref _attempts) <= failures)
        {
            Interlocked.Increment(ref _failed);
            throw new IOException($"storage outage while writing {relativePath}");
        }

        return inner.WriteTextAsync(relativePath, text, cancellationToken);
    }

    public IAsyncEnumerable<string> ReadLinesAsync(string relativePath, CancellationToken cancellationToken) => inner.ReadLinesAsync(relativePath, cancellationToken);

    public Task AppendLinesAsync(string relativePath, string lines, CancellationToken cancellationToken)
    {
        if (matches(relativePath) && Interlocked.Increment(ref _attempts) <= failures)
        {
            Interlocked.Increment(ref _failed);
            throw new IOException($"storage outage while appending to {relativePath}");
        }

        return inner.AppendLinesAsync(relativePath, lines, cancellationToken);
    }

    public Task<bool> UploadIfAbsentAsync(string relativePath, string localFile, CancellationToken cancellationToken) =>
        inner.UploadIfAbsentAsync(relativePath, localFile, cancellationToken);
}
