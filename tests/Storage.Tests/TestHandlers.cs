using System.Net;
using Azure.Core.Pipeline;
using MambaSt.Batch.Storage;
using MambaSt.Batch.Storage.AzureBlobs;
using Microsoft.Extensions.Logging;

namespace MambaSt.Batch.Storage.Tests;

/// <summary>Counts requests that reach the network and, when asked, fails a seeded share of them with 503,
/// a connection error or a stall longer than the attempt timeout.</summary>
internal sealed class FaultingHandler(double failureRate = 0, int seed = 1234) : DelegatingHandler(new SocketsHttpHandler())
{
    private readonly Random _random = new(seed);
    private int _requests;
    private int _faults;
    private readonly List<string> _urls = [];

    public int Requests => Volatile.Read(ref _requests);

    public int Faults => Volatile.Read(ref _faults);

    public Func<HttpRequestMessage, HttpResponseMessage?>? Override { get; set; }

    public IReadOnlyList<string> Urls
    {
        get
        {
            lock (_urls) return [.. _urls];
        }
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _requests);
        lock (_urls) _urls.Add(request.RequestUri!.PathAndQuery);
        if (Override?.Invoke(request) is { } overridden)
        {
            return overridden;
        }

        int fault;
        lock (_random)
        {
            fault = _random.NextDouble() < failureRate ? _random.Next(3) + 1 : 0;
        }

        if (fault > 0) Interlocked.Increment(ref _faults);
        switch (fault)
        {
            case 1:
                return new HttpResponseMessage(HttpStatusCode.ServiceUnavailable) { RequestMessage = request, Content = new ByteArrayContent([]) };
            case 2:
                throw new HttpRequestException(HttpRequestError.ConnectionError, "injected connection failure");
            case 3:
                await Task.Delay(TimeSpan.FromSeconds(30), cancellationToken);
                break;
        }

        return await base.SendAsync(request, cancellationToken);
    }

    public HttpPipelineTransport Transport() => new HttpClientTransport(new HttpClient(this));
}

internal sealed class CollectingLogger : ILogger
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines) return [.. _lines];
        }
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_lines) _lines.Add(formatter(state, exception) + (exception is null ? "" : " " + exception));
    }
}

internal static class TestStores
{
    public static StorageOptions Options(Action<StorageOptions>? configure = null)
    {
        var options = new StorageOptions
        {
            Resilience = new StorageResilienceOptions
            {
                MaxRetryAttempts = 5,
                BaseDelay = TimeSpan.FromMilliseconds(20),
                MaxDelay = TimeSpan.FromMilliseconds(500),
                AttemptTimeout = TimeSpan.FromSeconds(20),
            },
        };
        configure?.Invoke(options);
        return options;
    }

    public static string NewContainer() => $"t{Guid.NewGuid():N}"[..30];

    public static async Task<AzureBlobStore> AzureAsync(
        string connectionString, StorageOptions? options = null, FaultingHandler? handler = null, ILogger? logger = null, string? container = null)
    {
        var store = new AzureBlobStore(
            BlobAccount.FromConnectionString(connectionString), container ?? NewContainer(), options ?? Options(), logger, handler?.Transport());
        await store.CreateContainerIfMissingAsync(TestContext.Current.CancellationToken);
        return store;
    }

    public static byte[] Bytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static async Task<byte[]> ReadAllAsync(IBlobStore store, string name)
    {
        await using var stream = await store.OpenReadAsync(name, TestContext.Current.CancellationToken);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy, TestContext.Current.CancellationToken);
        return copy.ToArray();
    }
}

/// <summary>A stream that hides its length and cannot seek, like a network or pipe source.</summary>
internal sealed class ForwardOnlyStream(byte[] data) : Stream
{
    private int _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = Math.Min(count, Math.Min(data.Length - _position, 100_000));
        Array.Copy(data, _position, buffer, offset, n);
        _position += n;
        return n;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
