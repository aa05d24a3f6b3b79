using System.Buffers;
using System.Text.RegularExpressions;
using Azure;
using Azure.Core.Pipeline;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly.CircuitBreaker;

namespace MambaSt.Batch.Storage.AzureBlobs;

/// <summary>
/// One Azure Blob container through Azure.Storage.Blobs (<see cref="BlobContainerClient"/>), authenticated by
/// Shared Key, SAS or a token credential. The SDK's retry slot holds <see cref="ResilienceRetryPolicy"/> (Polly:
/// retry around a circuit breaker), the only retry layer; the SDK's network timeout bounds each attempt.
/// Thread-safe; create one per container and share it.
/// </summary>
public sealed partial class AzureBlobStore : IBlobStore
{
    private readonly BlobContainerClient _container;
    private readonly ResilienceRetryPolicy _retry;
    private readonly StorageOptions _options;
    private readonly StorageTransferOptions _transfer;

    /// <param name="transport">Replaces the HTTP transport (tests inject faults here); null uses HttpClient.</param>
    public AzureBlobStore(BlobAccount account, string container, StorageOptions options, ILogger? logger = null, HttpPipelineTransport? transport = null)
    {
        if (!IsValidContainerName(container))
        {
            throw new StorageException(StorageErrorKind.InvalidName, $"Refused container name '{BlobName.Printable(container)}': 3-63 lowercase letters, digits and single '-'.");
        }

        Account = account;
        Container = container;
        _options = options;
        _retry = new ResilienceRetryPolicy(options.Resilience, logger ?? NullLogger.Instance);
        _transfer = new StorageTransferOptions
        {
            InitialTransferSize = options.SinglePutLimitBytes,
            MaximumTransferSize = options.BlockSizeBytes,
            MaximumConcurrency = options.UploadConcurrency,
        };

        var clientOptions = ClientOptions(options, _retry, transport);
        var service = account switch
        {
            { SharedKey: { } key } => new BlobServiceClient(account.Endpoint, key, clientOptions),
            { Sas: { } sas } => new BlobServiceClient(account.Endpoint, sas, clientOptions),
            { Token: { } token } => new BlobServiceClient(account.Endpoint, token, clientOptions),
            _ => new BlobServiceClient(account.Endpoint, clientOptions),
        };
        _container = service.GetBlobContainerClient(container);
    }

    public BlobAccount Account { get; }

    public string Container { get; }

    /// <summary>Attempts repeated by the retry strategy since this store was created.</summary>
    public long RetryCount => _retry.RetryCount;

    public string Description => $"{Account.Endpoint}/{Container}";

    public override string ToString() => Description;

    public static bool IsValidContainerName(string? name) =>
        name is "$root" || (name is not null && ContainerNamePattern().IsMatch(name) && !name.Contains("--", StringComparison.Ordinal));

    /// <summary>The service version every client of ours sends (connection string, SAS and token alike).</summary>
    internal static BlobClientOptions.ServiceVersion ServiceVersion(string apiVersion) =>
        Enum.TryParse<BlobClientOptions.ServiceVersion>("V" + apiVersion.Replace('-', '_'), out var version) && Enum.IsDefined(version)
            ? version
            : throw new StorageException(StorageErrorKind.NotConfigured, $"Storage:ApiVersion '{BlobName.Printable(apiVersion)}' is not a Blob service version Azure.Storage.Blobs knows (e.g. 2026-06-06).");

    private static BlobClientOptions ClientOptions(StorageOptions options, ResilienceRetryPolicy retry, HttpPipelineTransport? transport)
    {
        var clientOptions = new BlobClientOptions(ServiceVersion(options.ApiVersion))
        {
            // Replaces the SDK's RetryPolicy in the same pipeline position (per call, before authentication), so
            // every attempt is signed afresh and nothing else retries.
            RetryPolicy = retry,
        };
        clientOptions.Retry.MaxRetries = 0;
        clientOptions.Retry.NetworkTimeout = options.Resilience.AttemptTimeout;
        if (transport is not null) clientOptions.Transport = transport;
        return clientOptions;
    }

    public Task CreateContainerIfMissingAsync(CancellationToken cancellationToken) =>
        RunAsync("create container", null, false, ct => _container.CreateIfNotExistsAsync(cancellationToken: ct), cancellationToken);

    public async Task<BlobProperties> PutAsync(string name, Stream content, BlobWriteOptions? options, CancellationToken cancellationToken)
    {
        BlobName.Validate(name);
        ArgumentNullException.ThrowIfNull(content);
        options ??= new BlobWriteOptions();
        var metadata = ValidateMetadata(options.Metadata);
        var contentType = ValidContentType(options.ContentType);
        var upload = new BlobUploadOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = contentType },
            Metadata = new Dictionary<string, string>(metadata),
            Conditions = options.IfAbsent ? new BlobRequestConditions { IfNoneMatch = ETag.All } : null,
            TransferOptions = _transfer,
        };

        if (content.CanSeek)
        {
            var length = content.Length - content.Position;
            var info = await RunAsync("put", name, options.IfAbsent, ct => Blob(name).UploadAsync(content, upload, ct), cancellationToken).ConfigureAwait(false);
            return Written(name, length, contentType, metadata, info.Value);
        }

        // The SDK stages a stream of unknown length in blocks even when it is small. Reading ahead one block (the
        // SDK buffers a block at a time anyway) lets a short forward-only stream go up in one Put Blob; a longer
        // one continues from this head, the SDK buffering block by block.
        var headSize = (int)Math.Min(Math.Min(_options.SinglePutLimitBytes, _options.BlockSizeBytes) + 1, Array.MaxLength);
        var head = ArrayPool<byte>.Shared.Rent(headSize);
        try
        {
            var read = await content.ReadAtLeastAsync(head.AsMemory(0, headSize), headSize, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            if (read < headSize)
            {
                var info = await RunAsync("put", name, options.IfAbsent, ct => Blob(name).UploadAsync(new MemoryStream(head, 0, read, writable: false), upload, ct), cancellationToken).ConfigureAwait(false);
                return Written(name, read, contentType, metadata, info.Value);
            }

            var rest = new HeadThenRestStream(head.AsMemory(0, read), content);
            var staged = await RunAsync("put", name, options.IfAbsent, ct => Blob(name).UploadAsync(rest, upload, ct), cancellationToken).ConfigureAwait(false);
            return Written(name, rest.BytesRead, contentType, metadata, staged.Value);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(head);
        }
    }

    private static BlobProperties Written(string name, long length, string contentType, IReadOnlyDictionary<string, string> metadata, BlobContentInfo info) => new()
    {
        Name = name,
        Length = length,
        ContentType = contentType,
        ETag = info.ETag.ToString(),
        LastModified = info.LastModified,
        Metadata = metadata,
    };

    public async Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken)
    {
        BlobName.Validate(name);
        var download = await RunAsync("read", name, false, ct => Blob(name).DownloadStreamingAsync(cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        return download.Value.Content;
    }

    public async Task<BlobProperties> GetPropertiesAsync(string name, CancellationToken cancellationToken)
    {
        BlobName.Validate(name);
        var properties = (await RunAsync("get properties", name, false, ct => Blob(name).GetPropertiesAsync(cancellationToken: ct), cancellationToken).ConfigureAwait(false)).Value;
        return new BlobProperties
        {
            Name = name,
            Length = properties.ContentLength,
            ContentType = properties.ContentType ?? "application/octet-stream",
            ETag = properties.ETag.ToString(),
            LastModified = properties.LastModified,
            Metadata = new Dictionary<string, string>(properties.Metadata, StringComparer.OrdinalIgnoreCase),
        };
    }

    public async Task<BlobPage> ListPageAsync(string? prefix, string? continuationToken, int? pageSize, CancellationToken cancellationToken)
    {
        prefix = BlobName.ValidatePrefix(prefix);
        var size = pageSize ?? _options.ListPageSize;
        if (size is < 1 or > 5000)
        {
            throw new StorageException(StorageErrorKind.InvalidRequest, $"Page size {size} is outside 1-5000.");
        }

        return await RunAsync("list", prefix, false, async ct =>
        {
            var pages = _container.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix.Length == 0 ? null : prefix }, ct)
                .AsPages(string.IsNullOrEmpty(continuationToken) ? null : continuationToken, size);
            await foreach (var page in pages.ConfigureAwait(false))
            {
                return new BlobPage
                {
                    Items = [.. page.Values.Select(blob => new BlobItem
                    {
                        Name = blob.Name,
                        Length = blob.Properties.ContentLength ?? 0,
                        ContentType = blob.Properties.ContentType,
                        LastModified = blob.Properties.LastModified,
                    })],
                    ContinuationToken = string.IsNullOrEmpty(page.ContinuationToken) ? null : page.ContinuationToken,
                };
            }

            return new BlobPage { Items = [], ContinuationToken = null };
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        BlobName.Validate(name);
        return (await RunAsync("delete", name, false, ct => Blob(name).DeleteIfExistsAsync(cancellationToken: ct), cancellationToken).ConfigureAwait(false)).Value;
    }

    private BlobClient Blob(string name) => _container.GetBlobClient(name);

    /// <summary>One SDK call; its failures become <see cref="StorageException"/>s that name the blob, never a URL query or key.</summary>
    private async Task<T> RunAsync<T>(string operation, string? name, bool ifAbsent, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (Translate(operation, name, ifAbsent, e) is { } translated)
        {
            throw translated;
        }
    }

    private StorageException? Translate(string operation, string? name, bool ifAbsent, Exception e)
    {
        switch (e)
        {
            case StorageException:
                return null;
            case AggregateException { InnerExceptions.Count: > 0 } aggregate:
                return Translate(operation, name, ifAbsent, aggregate.InnerExceptions[0]);
            case RequestFailedException { Status: > 0 } failed:
                return FromStatus(operation, name, ifAbsent, failed.Status, failed.ErrorCode);
            case BrokenCircuitException:
                return new StorageException(StorageErrorKind.Unavailable, Failed(operation, name, $"circuit open after repeated failures; {RetriesText}"), null, e);
            case OperationCanceledException:
                return new StorageException(StorageErrorKind.Timeout, Failed(operation, name, $"each attempt timed out after {_options.Resilience.AttemptTimeout}; {RetriesText}"), null, e);
            case RequestFailedException or HttpRequestException or IOException:
                return new StorageException(StorageErrorKind.Unavailable, Failed(operation, name, $"{ResilienceRetryPolicy.Describe(e)}; {RetriesText}"), null, e);
            default:
                return null;
        }
    }

    /// <remarks>No inner exception: the SDK's message carries the response body, which is the service's to word.</remarks>
    private StorageException FromStatus(string operation, string? name, bool ifAbsent, int status, string? code)
    {
        var transient = TransientStatusException.IsTransient(status);
        var kind = status switch
        {
            404 => StorageErrorKind.NotFound,
            409 or 412 when ifAbsent => StorageErrorKind.AlreadyExists,
            401 or 403 => StorageErrorKind.Forbidden,
            408 => StorageErrorKind.Timeout,
            400 when code is "InvalidResourceName" or "InvalidUri" or "OutOfRangeInput" => StorageErrorKind.InvalidName,
            >= 500 or 429 => StorageErrorKind.Unavailable,
            _ => StorageErrorKind.InvalidRequest,
        };
        var why = $"HTTP {status} {code}".TrimEnd();
        return new StorageException(kind, Failed(operation, name, transient ? $"{why} after {RetriesText}" : why), status);
    }

    private string RetriesText => $"up to {_options.Resilience.MaxRetryAttempts} retries";

    private string Failed(string operation, string? name, string why) => $"Storage {operation} '{Container}/{BlobName.Printable(name)}' on {Account.Endpoint} failed: {why}.";

    internal static IReadOnlyDictionary<string, string> ValidateMetadata(IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata is null || metadata.Count == 0) return new Dictionary<string, string>();
        foreach (var (key, value) in metadata)
        {
            if (!MetadataNamePattern().IsMatch(key))
            {
                throw new StorageException(StorageErrorKind.InvalidRequest, $"Metadata name '{BlobName.Printable(key)}' is not a C# identifier (letters, digits, '_').");
            }

            if (value.Any(c => c is < ' ' or > '~') || value != value.Trim())
            {
                throw new StorageException(StorageErrorKind.InvalidRequest, $"Metadata '{key}' must be printable ASCII without leading or trailing spaces.");
            }
        }

        return new Dictionary<string, string>(metadata, StringComparer.OrdinalIgnoreCase);
    }

    internal static string ValidContentType(string? contentType)
    {
        if (string.IsNullOrWhiteSpace(contentType)) return "application/octet-stream";
        if (contentType.Any(c => c is < ' ' or > '~'))
        {
            throw new StorageException(StorageErrorKind.InvalidRequest, "Content type must be printable ASCII.");
        }

        return contentType;
    }

    [GeneratedRegex("^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$")]
    private static partial Regex ContainerNamePattern();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,255}$")]
    private static partial Regex MetadataNamePattern();

    /// <summary>A forward-only stream of an already read head followed by the rest of the caller's stream,
    /// counting what the SDK read for the written length.</summary>
    private sealed class HeadThenRestStream(ReadOnlyMemory<byte> head, Stream rest) : Stream
    {
        private ReadOnlyMemory<byte> _head = head;
        private long _read;

        public long BytesRead => Interlocked.Read(ref _read);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer) => FromHead(buffer) is var n and > 0 ? n : Count(rest.Read(buffer));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            FromHead(buffer.Span) is var n and > 0 ? n : Count(await rest.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private int FromHead(Span<byte> buffer)
        {
            if (_head.IsEmpty || buffer.IsEmpty) return 0;
            var n = Math.Min(buffer.Length, _head.Length);
            _head.Span[..n].CopyTo(buffer);
            _head = _head[n..];
            return Count(n);
        }

        private int Count(int read)
        {
            Interlocked.Add(ref _read, read);
            return read;
        }
    }
}
