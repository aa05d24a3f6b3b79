using System.Runtime.CompilerServices;
using System.Text;

using MambaSt.Batch.Submitter.Jobs;
using MambaSt.Batch.Storage;

namespace MambaSt.Batch.Submitter.Storage;

/// <summary>A blob prefix (<c>az://container/prefix</c> or an https URL, with or without SAS) on an <see cref="IBlobStore"/>.</summary>
public sealed class BlobArchiveStore : IArchiveStore
{
    private readonly IBlobStore _store;
    private readonly string _prefix;
    private readonly string _refBase;
    private readonly string _refQuery;
    private readonly bool _escapeNames;

    public BlobArchiveStore(string location, StorageTarget target)
    {
        Location = location.TrimEnd('/');
        _store = target.Store;
        _prefix = target.Name.Length == 0 || target.Name.EndsWith('/') ? target.Name : target.Name + "/";
        var query = location.IndexOf('?');
        _refBase = (query < 0 ? location : location[..query]).TrimEnd('/');
        _refQuery = query < 0 ? "" : location[query..];
        _escapeNames = !location.StartsWith("az://", StringComparison.OrdinalIgnoreCase);
    }

    public string Location { get; }

    public bool IsLocal => false;

    public Task CreateContainerIfMissingAsync(CancellationToken cancellationToken) => _store.CreateContainerIfMissingAsync(cancellationToken);

    /// <summary>
    /// Creates the container when the credential may; false when it may not (HTTP 403: a container-scoped SAS,
    /// <c>sr=c</c>, can never create containers). The container then has to exist already, and when it does not
    /// the first upload or write fails with the real error.
    /// </summary>
    public async Task<bool> TryCreateContainerAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _store.CreateContainerIfMissingAsync(cancellationToken);
            return true;
        }
        catch (StorageException ex) when (ex.Kind == StorageErrorKind.Forbidden)
        {
            return false;
        }
    }

    /// <summary>For an http(s) location each path segment is percent-encoded, so a name with '#', '?' or '%'
    /// parses back to the same blob and the SAS stays the query; <c>az://</c> references carry names as they are.</summary>
    public string RefFor(string relativePath) => relativePath.Length == 0 ? _refBase + _refQuery : $"{_refBase}/{EscapeForRef(relativePath)}{_refQuery}";

    /// <summary>The form kept in the batch's records (inside the container the SAS can write to): a reference under
    /// this location loses its SAS. The SAS stays in the owner-only local batch index (docs/security.md).</summary>
    public string ForRecord(string reference) => IsUnder(reference) ? StorageLocation.WithoutSas(reference) : reference;

    /// <summary>The form sent to workers: a SAS-free reference under this location gets this location's SAS back.</summary>
    public string ForMessage(string reference) =>
        _refQuery.Length > 0 && IsUnder(reference) && !reference.Contains('?') ? reference + _refQuery : reference;

    private bool IsUnder(string reference) =>
        reference.StartsWith(_refBase + "/", StringComparison.Ordinal) || reference.StartsWith(_refBase + "?", StringComparison.Ordinal)
        || reference == _refBase;

    private string EscapeForRef(string relativePath) =>
        _escapeNames ? string.Join('/', relativePath.Split('/').Select(Uri.EscapeDataString)) : relativePath;

    public async IAsyncEnumerable<ArchiveItem> ListAsync(string relativePrefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var skipRecords = !relativePrefix.StartsWith(Batches.BatchPaths.Root, StringComparison.Ordinal);
        await foreach (var item in _store.ListAsync(_prefix + relativePrefix, cancellationToken))
        {
            var rel = item.Name[_prefix.Length..];
            if (skipRecords && rel.StartsWith(Batches.BatchPaths.Root + "/", StringComparison.Ordinal)) continue;
            yield return new ArchiveItem(rel, item.Length, RefFor(rel), null);
        }
    }

    /// <summary>A location that names one blob (a style): lists just that blob when the prefix is not a folder.</summary>
    public async Task<ArchiveItem?> GetSingleAsync(CancellationToken cancellationToken)
    {
        var name = _prefix.TrimEnd('/');
        if (!await _store.ExistsAsync(name, cancellationToken)) return null;
        var props = await _store.GetPropertiesAsync(name, cancellationToken);
        return new ArchiveItem(name, props.Length, _refBase + _refQuery, JobIdentity.BlobContentIdentity(name, props.Length, props.ETag, null));
    }

    public async Task<string> IdentifyAsync(ArchiveItem item, CancellationToken cancellationToken)
    {
        var props = await _store.GetPropertiesAsync(_prefix + item.RelativePath, cancellationToken);
        return JobIdentity.BlobContentIdentity(_prefix + item.RelativePath, props.Length, props.ETag, null);
    }

    public Task<bool> ExistsAsync(string relativePath, CancellationToken cancellationToken) => _store.ExistsAsync(_prefix + relativePath, cancellationToken);

    public async Task<IReadOnlyDictionary<string, string>?> ReadMetadataAsync(string relativePath, CancellationToken cancellationToken)
    {
        try
        {
            return (await _store.GetPropertiesAsync(_prefix + relativePath, cancellationToken)).Metadata;
        }
        catch (StorageException ex) when (ex.Kind == StorageErrorKind.NotFound)
        {
            return null;
        }
    }

    public Task<bool> DeleteAsync(string relativePath, CancellationToken cancellationToken) => _store.DeleteAsync(_prefix + relativePath, cancellationToken);

    public async Task<string?> ReadTextAsync(string relativePath, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await _store.OpenReadAsync(_prefix + relativePath, cancellationToken);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            return await reader.ReadToEndAsync(cancellationToken);
        }
        catch (StorageException ex) when (ex.Kind == StorageErrorKind.NotFound)
        {
            return null;
        }
    }

    public async IAsyncEnumerable<string> ReadLinesAsync(string relativePath, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Stream stream;
        try
        {
            stream = await _store.OpenReadAsync(_prefix + relativePath, cancellationToken);
        }
        catch (StorageException ex) when (ex.Kind == StorageErrorKind.NotFound)
        {
            yield break;
        }

        await using (stream)
        {
            using var reader = new StreamReader(stream, Encoding.UTF8);
            while (await reader.ReadLineAsync(cancellationToken) is { } line) yield return line;
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _segments = new(StringComparer.Ordinal);

    /// <summary>
    /// Each append is the next numbered segment, written create-if-absent. Record names carry a run id unique to the
    /// writing process, so a segment that is already there is this writer's own earlier attempt whose response was
    /// lost (written, then retried): the append is done.
    /// </summary>
    public async Task AppendLinesAsync(string relativePath, string lines, CancellationToken cancellationToken)
    {
        var number = _segments.AddOrUpdate(relativePath, 1, (_, n) => n + 1);
        var segment = SegmentName(relativePath, number);
        try
        {
            using var content = new MemoryStream(Encoding.UTF8.GetBytes(lines));
            await _store.PutAsync(_prefix + segment, content, new BlobWriteOptions { ContentType = "application/x-ndjson", IfAbsent = true }, cancellationToken);
        }
        catch (StorageException ex) when (ex.Kind == StorageErrorKind.AlreadyExists)
        {
            // A failed append is not given its number back: it may have been written with a lost response, and the
            // caller's next append (its lines again, and newer ones) must not be taken for it. A line recorded
            // twice is harmless; readers merge records by job.
        }
    }

    /// <summary><c>events-RUN.jsonl</c> to <c>events-RUN.000001.jsonl</c>: the same prefix, so a listing finds it.</summary>
    public static string SegmentName(string relativePath, int number)
    {
        var dot = relativePath.LastIndexOf('.');
        var slash = relativePath.LastIndexOf('/');
        var stem = dot > slash ? relativePath[..dot] : relativePath;
        var ext = dot > slash ? relativePath[dot..] : "";
        return $"{stem}.{number:D6}{ext}";
    }

    public async Task WriteTextAsync(string relativePath, string text, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream(Encoding.UTF8.GetBytes(text));
        await _store.PutAsync(_prefix + relativePath, content, new BlobWriteOptions { ContentType = "application/x-ndjson" }, cancellationToken);
    }

    public async Task<bool> UploadIfAbsentAsync(string relativePath, string localFile, CancellationToken cancellationToken)
    {
        if (await _store.ExistsAsync(_prefix + relativePath, cancellationToken)) return false;
        try
        {
            await using var content = File.OpenRead(localFile);
            await _store.PutAsync(_prefix + relativePath, content, new BlobWriteOptions { IfAbsent = true }, cancellationToken);
            return true;
        }
        catch (StorageException ex) when (ex.Kind == StorageErrorKind.AlreadyExists)
        {
            return false;
        }
    }
}
