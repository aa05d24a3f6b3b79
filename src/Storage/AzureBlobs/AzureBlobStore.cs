using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace MambaSt.Batch.Storage.AzureBlobs;

/// <summary>
/// One Azure Blob container over the Blob REST API on Azure.Core's <see cref="HttpPipeline"/>, with Shared Key,
/// SAS or token authentication and a Polly pipeline (retry, circuit breaker, per-attempt timeout) around every
/// HTTP attempt. Thread-safe; create one per container and share it.
/// </summary>
public sealed partial class AzureBlobStore : IBlobStore
{
    private const string StorageScope = "https://storage.azure.com/.default";

    private readonly HttpPipeline _pipeline;
    private readonly ResiliencePipeline _resilience;
    private readonly StorageOptions _options;
    private readonly string _containerUrl;
    private long _retries;

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
        _containerUrl = $"{account.Endpoint.AbsoluteUri.TrimEnd('/')}/{container}";
        logger ??= NullLogger.Instance;

        var clientOptions = new BlobClientOptions();
        clientOptions.Retry.MaxRetries = 0;
        clientOptions.Retry.NetworkTimeout = options.Resilience.AttemptTimeout;
        if (transport is not null) clientOptions.Transport = transport;

        HttpPipelinePolicy auth = account switch
        {
            { SharedKey: { } key } => new SharedKeyPolicy(key),
            { Sas: { } sas } => new SasPolicy(sas),
            { Token: { } token } => new BearerTokenAuthenticationPolicy(token, StorageScope),
            _ => new AnonymousPolicy(),
        };
        _pipeline = HttpPipelineBuilder.Build(clientOptions, [], [auth], new NeverErrorClassifier());
        _resilience = StorageResilience.Build(options.Resilience, logger, () => Interlocked.Increment(ref _retries));
    }

    public BlobAccount Account { get; }

    public string Container { get; }

    /// <summary>Attempts repeated by the retry strategy since this store was created.</summary>
    public long RetryCount => Interlocked.Read(ref _retries);

    public string Description => $"{Account.Endpoint}/{Container}";

    public override string ToString() => Description;

    public static bool IsValidContainerName(string? name) =>
        name is "$root" || (name is not null && ContainerNamePattern().IsMatch(name) && !name.Contains("--", StringComparison.Ordinal));

    public Task CreateContainerIfMissingAsync(CancellationToken cancellationToken) =>
        SendAsync("create container", null, () =>
        {
            var message = NewMessage(RequestMethod.Put, $"{_containerUrl}?restype=container");
            return message;
        }, m => m.Response.Status is 201 or 409 ? true : throw Permanent("create container", null, m.Response, false), cancellationToken);

    public async Task<BlobProperties> PutAsync(string name, Stream content, BlobWriteOptions? options, CancellationToken cancellationToken)
    {
        BlobName.Validate(name);
        ArgumentNullException.ThrowIfNull(content);
        options ??= new BlobWriteOptions();
        var metadata = ValidateMetadata(options.Metadata);
        var contentType = ValidContentType(options.ContentType);
        var limit = _options.SinglePutLimitBytes;

        if (content.CanSeek)
        {
            var start = content.Position;
            var remaining = content.Length - start;
            if (remaining <= limit)
            {
                var etag = await PutBlobAsync(name, () => new Window(content, start, remaining), contentType, metadata, options.IfAbsent, cancellationToken).ConfigureAwait(false);
                return Properties(name, remaining, contentType, etag, metadata);
            }

            return await PutBlocksAsync(name, content, ReadOnlyMemory<byte>.Empty, contentType, metadata, options.IfAbsent, cancellationToken).ConfigureAwait(false);
        }

        var head = new byte[(int)Math.Min(limit + 1, Array.MaxLength)];
        var read = await content.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read <= limit)
        {
            var etag = await PutBlobAsync(name, () => new MemoryStream(head, 0, read, writable: false), contentType, metadata, options.IfAbsent, cancellationToken).ConfigureAwait(false);
            return Properties(name, read, contentType, etag, metadata);
        }

        return await PutBlocksAsync(name, content, head.AsMemory(0, read), contentType, metadata, options.IfAbsent, cancellationToken).ConfigureAwait(false);
    }

    public async Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken)
    {
        BlobName.Validate(name);
        return await SendAsync("read", name, () =>
        {
            var message = NewMessage(RequestMethod.Get, BlobUrl(name));
            message.BufferResponse = false;
            return message;
        }, m => m.Response.Status == 200
            ? m.ExtractResponseContent() ?? new MemoryStream([], writable: false)
            : throw Permanent("read", name, m.Response, false), cancellationToken).ConfigureAwait(false);
    }

    public async Task<BlobProperties> GetPropertiesAsync(string name, CancellationToken cancellationToken)
    {
        BlobName.Validate(name);
        return await SendAsync("get properties", name, () => NewMessage(RequestMethod.Head, BlobUrl(name)), m =>
        {
            var response = m.Response;
            if (response.Status != 200) throw Permanent("get properties", name, response, false);
            var metadata = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var header in response.Headers)
            {
                if (header.Name.StartsWith("x-ms-meta-", StringComparison.OrdinalIgnoreCase))
                {
                    metadata[header.Name["x-ms-meta-".Length..]] = header.Value;
                }
            }

            return new BlobProperties
            {
                Name = name,
                Length = response.Headers.ContentLength ?? 0,
                ContentType = response.Headers.ContentType ?? "application/octet-stream",
                ETag = response.Headers.ETag?.ToString(),
                LastModified = response.Headers.TryGetValue("Last-Modified", out var modified) && DateTimeOffset.TryParse(modified, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) ? at : null,
                Metadata = metadata,
            };
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<BlobPage> ListPageAsync(string? prefix, string? continuationToken, int? pageSize, CancellationToken cancellationToken)
    {
        prefix = BlobName.ValidatePrefix(prefix);
        var size = pageSize ?? _options.ListPageSize;
        if (size is < 1 or > 5000)
        {
            throw new StorageException(StorageErrorKind.InvalidRequest, $"Page size {size} is outside 1-5000.");
        }

        var url = new StringBuilder($"{_containerUrl}?restype=container&comp=list&maxresults={size}");
        if (prefix.Length > 0) url.Append("&prefix=").Append(Uri.EscapeDataString(prefix));
        if (!string.IsNullOrEmpty(continuationToken)) url.Append("&marker=").Append(Uri.EscapeDataString(continuationToken));

        return await SendAsync("list", prefix, () => NewMessage(RequestMethod.Get, url.ToString()), m =>
        {
            if (m.Response.Status != 200) throw Permanent("list", prefix, m.Response, false);
            return ParseList(m.Response.Content.ToStream());
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        BlobName.Validate(name);
        return await SendAsync("delete", name, () => NewMessage(RequestMethod.Delete, BlobUrl(name)), m => m.Response.Status switch
        {
            202 or 200 => true,
            404 => false,
            _ => throw Permanent("delete", name, m.Response, false),
        }, cancellationToken).ConfigureAwait(false);
    }

    private Task<string?> PutBlobAsync(string name, Func<Stream> body, string contentType, IReadOnlyDictionary<string, string> metadata, bool ifAbsent, CancellationToken cancellationToken) =>
        SendAsync("put", name, () =>
        {
            var message = NewMessage(RequestMethod.Put, BlobUrl(name));
            var request = message.Request;
            request.Headers.SetValue("x-ms-blob-type", "BlockBlob");
            request.Headers.SetValue("Content-Type", contentType);
            AddWriteHeaders(request, metadata, ifAbsent);
            request.Content = RequestContent.Create(body());
            return message;
        }, m => m.Response.Status == 201 ? m.Response.Headers.ETag?.ToString() : throw Permanent("put", name, m.Response, ifAbsent), cancellationToken);

    private async Task<BlobProperties> PutBlocksAsync(
        string name, Stream content, ReadOnlyMemory<byte> head, string contentType, IReadOnlyDictionary<string, string> metadata, bool ifAbsent, CancellationToken cancellationToken)
    {
        var blockSize = _options.BlockSizeBytes;
        var blockIds = new List<string>();
        var uploadId = Guid.NewGuid().ToString("N")[..8];
        var buffer = ArrayPool<byte>.Shared.Rent(blockSize);
        long total = 0;
        try
        {
            while (true)
            {
                ReadOnlyMemory<byte> block;
                if (head.Length >= blockSize)
                {
                    block = head[..blockSize];
                    head = head[blockSize..];
                }
                else if (head.Length > 0)
                {
                    head.CopyTo(buffer);
                    var more = await content.ReadAtLeastAsync(buffer.AsMemory(head.Length, blockSize - head.Length), blockSize - head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                    block = buffer.AsMemory(0, head.Length + more);
                    head = ReadOnlyMemory<byte>.Empty;
                }
                else
                {
                    var read = await content.ReadAtLeastAsync(buffer.AsMemory(0, blockSize), blockSize, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                    if (read == 0) break;
                    block = buffer.AsMemory(0, read);
                }

                var blockId = Convert.ToBase64String(Encoding.ASCII.GetBytes($"{uploadId}-{blockIds.Count:D6}"));
                await SendAsync("put block", name, () =>
                {
                    var message = NewMessage(RequestMethod.Put, $"{BlobUrl(name)}?comp=block&blockid={Uri.EscapeDataString(blockId)}");
                    message.Request.Headers.SetValue("Content-Type", "application/octet-stream");
                    message.Request.Content = RequestContent.Create(block);
                    return message;
                }, m => m.Response.Status == 201 ? true : throw Permanent("put block", name, m.Response, false), cancellationToken).ConfigureAwait(false);
                blockIds.Add(blockId);
                total += block.Length;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        var list = new XElement("BlockList", blockIds.Select(id => new XElement("Latest", id)));
        var body = Encoding.UTF8.GetBytes("<?xml version=\"1.0\" encoding=\"utf-8\"?>" + list.ToString(SaveOptions.DisableFormatting));
        var etag = await SendAsync("put block list", name, () =>
        {
            var message = NewMessage(RequestMethod.Put, $"{BlobUrl(name)}?comp=blocklist");
            var request = message.Request;
            request.Headers.SetValue("Content-Type", "application/xml");
            request.Headers.SetValue("x-ms-blob-content-type", contentType);
            AddWriteHeaders(request, metadata, ifAbsent);
            request.Content = RequestContent.Create(body);
            return message;
        }, m => m.Response.Status == 201 ? m.Response.Headers.ETag?.ToString() : throw Permanent("put block list", name, m.Response, ifAbsent), cancellationToken).ConfigureAwait(false);
        return Properties(name, total, contentType, etag, metadata);
    }

    /// <summary>One operation: a fresh message per attempt (so bodies are re-sent from the start), inside the Polly pipeline.</summary>
    private async Task<T> SendAsync<T>(string operation, string? name, Func<HttpMessage> create, Func<HttpMessage, T> complete, CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get($"{operation} {Container}/{name}", cancellationToken);
        try
        {
            return await _resilience.ExecuteAsync(
                static async (ctx, state) =>
                {
                    using var message = state.create();
                    await state.store._pipeline.SendAsync(message, ctx.CancellationToken).ConfigureAwait(false);
                    var status = message.Response.Status;
                    if (TransientStatusException.IsTransient(status))
                    {
                        message.Response.Headers.TryGetValue("Retry-After", out var retryAfter);
                        throw new TransientStatusException(status, ErrorCode(message.Response), StorageResilience.RetryAfter(retryAfter));
                    }

                    return state.complete(message);
                },
                context,
                (store: this, create, complete)).ConfigureAwait(false);
        }
        catch (StorageException)
        {
            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (TransientStatusException e)
        {
            throw new StorageException(e.Status == 408 ? StorageErrorKind.Timeout : StorageErrorKind.Unavailable, Failed(operation, name, $"HTTP {e.Status} {e.ErrorCode} after {RetriesText}"), e.Status, e);
        }
        catch (TimeoutRejectedException e)
        {
            throw new StorageException(StorageErrorKind.Timeout, Failed(operation, name, $"each attempt timed out after {_options.Resilience.AttemptTimeout}; {RetriesText}"), null, e);
        }
        catch (BrokenCircuitException e)
        {
            throw new StorageException(StorageErrorKind.Unavailable, Failed(operation, name, $"circuit open after repeated failures; {RetriesText}"), null, e);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or RequestFailedException or OperationCanceledException)
        {
            var kind = e is OperationCanceledException ? StorageErrorKind.Timeout : StorageErrorKind.Unavailable;
            throw new StorageException(kind, Failed(operation, name, $"{StorageResilience.Describe(e)}; {RetriesText}"), null, e);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private string RetriesText => $"up to {_options.Resilience.MaxRetryAttempts} retries";

    private string Failed(string operation, string? name, string why) => $"Storage {operation} '{Container}/{BlobName.Printable(name)}' on {Account.Endpoint} failed: {why}.";

    private StorageException Permanent(string operation, string? name, Response response, bool ifAbsent)
    {
        var status = response.Status;
        var code = ErrorCode(response);
        var kind = status switch
        {
            404 => StorageErrorKind.NotFound,
            409 or 412 when ifAbsent => StorageErrorKind.AlreadyExists,
            401 or 403 => StorageErrorKind.Forbidden,
            400 when code is "InvalidResourceName" or "InvalidUri" or "OutOfRangeInput" => StorageErrorKind.InvalidName,
            >= 500 => StorageErrorKind.Unavailable,
            _ => StorageErrorKind.InvalidRequest,
        };
        return new StorageException(kind, Failed(operation, name, $"HTTP {status} {code}".TrimEnd()), status);
    }

    private static string? ErrorCode(Response response) =>
        response.Headers.TryGetValue("x-ms-error-code", out var code) ? code : null;

    private HttpMessage NewMessage(RequestMethod method, string url)
    {
        var message = _pipeline.CreateMessage();
        message.Request.Method = method;
        message.Request.Uri.Reset(new Uri(url));
        message.Request.Headers.SetValue("x-ms-version", _options.ApiVersion);
        return message;
    }

    private string BlobUrl(string name) => $"{_containerUrl}/{string.Join('/', name.Split('/').Select(Uri.EscapeDataString))}";

    private static void AddWriteHeaders(Request request, IReadOnlyDictionary<string, string> metadata, bool ifAbsent)
    {
        foreach (var (key, value) in metadata)
        {
            request.Headers.SetValue($"x-ms-meta-{key}", value);
        }

        if (ifAbsent) request.Headers.SetValue("If-None-Match", "*");
    }

    private static BlobProperties Properties(string name, long length, string contentType, string? etag, IReadOnlyDictionary<string, string> metadata) => new()
    {
        Name = name,
        Length = length,
        ContentType = contentType,
        ETag = etag,
        LastModified = DateTimeOffset.UtcNow,
        Metadata = metadata,
    };

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

    private static BlobPage ParseList(Stream xml)
    {
        var root = XDocument.Load(xml).Root ?? throw new StorageException(StorageErrorKind.Unavailable, "List response had no XML root.");
        var items = root.Element("Blobs")?.Elements("Blob").Select(blob =>
        {
            var properties = blob.Element("Properties");
            var modified = properties?.Element("Last-Modified")?.Value;
            return new BlobItem
            {
                Name = blob.Element("Name")?.Value ?? "",
                Length = long.TryParse(properties?.Element("Content-Length")?.Value, CultureInfo.InvariantCulture, out var length) ? length : 0,
                ContentType = properties?.Element("Content-Type")?.Value,
                LastModified = DateTimeOffset.TryParse(modified, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) ? at : null,
            };
        }).ToList() ?? [];
        var next = root.Element("NextMarker")?.Value;
        return new BlobPage { Items = items, ContinuationToken = string.IsNullOrEmpty(next) ? null : next };
    }

    [GeneratedRegex("^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$")]
    private static partial Regex ContainerNamePattern();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,255}$")]
    private static partial Regex MetadataNamePattern();

    private sealed class BlobClientOptions : ClientOptions;

    private sealed class NeverErrorClassifier : ResponseClassifier
    {
        public override bool IsErrorResponse(HttpMessage message) => false;
    }

    private sealed class AnonymousPolicy : HttpPipelineSynchronousPolicy;

    /// <summary>A non-owning, seekable view of part of the caller's stream, so a retry can re-send from the start
    /// without disposing the caller's stream.</summary>
    private sealed class Window(Stream inner, long start, long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position
        {
            get => _position;
            set => _position = Math.Clamp(value, 0, length);
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, length - _position);
            if (n <= 0) return 0;
            inner.Position = start + _position;
            var read = inner.Read(buffer[..n]);
            _position += read;
            return read;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = (int)Math.Min(buffer.Length, length - _position);
            if (n <= 0) return 0;
            inner.Position = start + _position;
            var read = await inner.ReadAsync(buffer[..n], cancellationToken).ConfigureAwait(false);
            _position += read;
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => length + offset,
        };

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
