namespace MambaSt.Batch.Storage;

/// <summary>
/// One container of blobs (an Azure container or a local folder). Names are '/'-separated relative paths,
/// checked by <see cref="BlobName"/>. Every failure surfaces as a <see cref="StorageException"/>.
/// Implementations are thread-safe: one instance serves every concurrent caller.
/// </summary>
public interface IBlobStore
{
    /// <summary>Where this store points, without credentials.</summary>
    string Description { get; }

    Task CreateContainerIfMissingAsync(CancellationToken cancellationToken);

    /// <summary>Writes <paramref name="content"/> from its current position to its end. With
    /// <see cref="BlobWriteOptions.IfAbsent"/> an existing blob is left alone and
    /// <see cref="StorageErrorKind.AlreadyExists"/> is thrown.</summary>
    Task<BlobProperties> PutAsync(string name, Stream content, BlobWriteOptions? options, CancellationToken cancellationToken);

    /// <summary>Opens the blob for reading; the bytes are streamed, not buffered. The caller disposes the stream.</summary>
    Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken);

    Task<BlobProperties> GetPropertiesAsync(string name, CancellationToken cancellationToken);

    /// <summary>One page of blobs whose names start with <paramref name="prefix"/>, in ordinal name order.
    /// Pass the previous page's <see cref="BlobPage.ContinuationToken"/> to get the next.</summary>
    Task<BlobPage> ListPageAsync(string? prefix, string? continuationToken, int? pageSize, CancellationToken cancellationToken);

    /// <summary>Deletes the blob; false when it did not exist.</summary>
    Task<bool> DeleteAsync(string name, CancellationToken cancellationToken);
}

public record BlobWriteOptions
{
    public string? ContentType { get; init; }

    /// <summary>Names are C# identifiers (letters, digits, '_'), values printable ASCII.</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>Create only: fail with <see cref="StorageErrorKind.AlreadyExists"/> when the blob exists (outputs).</summary>
    public bool IfAbsent { get; init; }
}

public record BlobProperties
{
    public required string Name { get; init; }

    public required long Length { get; init; }

    public required string ContentType { get; init; }

    public string? ETag { get; init; }

    public DateTimeOffset? LastModified { get; init; }

    public required IReadOnlyDictionary<string, string> Metadata { get; init; }
}

public record BlobItem
{
    public required string Name { get; init; }

    public required long Length { get; init; }

    public string? ContentType { get; init; }

    public DateTimeOffset? LastModified { get; init; }
}

public record BlobPage
{
    public required IReadOnlyList<BlobItem> Items { get; init; }

    /// <summary>Null on the last page.</summary>
    public string? ContinuationToken { get; init; }
}

public static class BlobStoreExtensions
{
    /// <summary>Every blob under <paramref name="prefix"/>, page after page.</summary>
    public static async IAsyncEnumerable<BlobItem> ListAsync(
        this IBlobStore store,
        string? prefix,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? token = null;
        do
        {
            var page = await store.ListPageAsync(prefix, token, null, cancellationToken).ConfigureAwait(false);
            foreach (var item in page.Items)
            {
                yield return item;
            }

            token = page.ContinuationToken;
        }
        while (token is not null);
    }

    public static async Task<bool> ExistsAsync(this IBlobStore store, string name, CancellationToken cancellationToken)
    {
        try
        {
            await store.GetPropertiesAsync(name, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (StorageException e) when (e.Kind == StorageErrorKind.NotFound)
        {
            return false;
        }
    }
}
