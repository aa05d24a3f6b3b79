using System.Collections.Concurrent;
using MambaSt.Batch.Contracts;
using MambaSt.Batch.Processing.Ports;

namespace MambaSt.Batch.Processing.Tests;

/// <summary>In-memory storage for unit tests of the pipeline's logic (real storage is tested in Storage.Tests).</summary>
internal sealed class FakeStorage : IJobStorage
{
    public ConcurrentDictionary<string, byte[]> Inputs { get; } = new();

    public ConcurrentDictionary<string, (byte[] Data, IReadOnlyDictionary<string, string> Metadata)> Outputs { get; } = new();

    public ConcurrentDictionary<string, int> TransientFailuresLeft { get; } = new();

    /// <summary>Thrown by ReadAsync for these locations (e.g. a storage client's own timeout).</summary>
    public ConcurrentDictionary<string, Exception> ReadExceptions { get; } = new();

    /// <summary>ReadAsync of these locations never answers: it waits until its token is cancelled.</summary>
    public ConcurrentDictionary<string, bool> Hangs { get; } = new();

    /// <summary>Completed when a read of a location in <see cref="Hangs"/> has begun.</summary>
    public TaskCompletionSource HangStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Reads;

    public async Task<ReadOnlyMemory<byte>> ReadAsync(string location, long maxBytes, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Reads);
        if (Hangs.ContainsKey(location))
        {
            HangStarted.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        return await Read(location);
    }

    private Task<ReadOnlyMemory<byte>> Read(string location)
    {
        if (ReadExceptions.TryGetValue(location, out var exception)) throw exception;
        if (TransientFailuresLeft.TryGetValue(location, out var left) && left > 0)
        {
            TransientFailuresLeft[location] = left - 1;
            throw new JobFailedException(StylizationErrorCode.StorageUnavailable, true, $"503 on {location}");
        }

        return Inputs.TryGetValue(location, out var data)
            ? Task.FromResult<ReadOnlyMemory<byte>>(data)
            : throw new JobFailedException(StylizationErrorCode.NotFound, false, $"{location} not found");
    }

    public Task<StoredOutput?> FindOutputAsync(string location, CancellationToken cancellationToken) =>
        Task.FromResult(Outputs.TryGetValue(location, out var o) ? new StoredOutput(o.Data.Length, o.Metadata) : null);

    public Task<bool> WriteOutputIfAbsentAsync(string location, ReadOnlyMemory<byte> data, string contentType,
        IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken) =>
        Task.FromResult(Outputs.TryAdd(location, (data.ToArray(), metadata)));
}

/// <summary>"Images" are 4 bytes: width, height, then a fill value; byte 0xFF marks a corrupt file.</summary>
internal sealed class FakeCodec : IJobImageCodec
{
    public static byte[] Image(byte width, byte height, byte fill = 7) => [width, height, fill, 0];

    /// <summary>Decoding an image whose fill byte is 0xDD blocks until this is set (a decode that runs long).</summary>
    public ManualResetEventSlim SlowDecodes { get; } = new();

    public RgbFrame Decode(ReadOnlyMemory<byte> data, int maxSide)
    {
        if (data.Length == 4 && data.Span[2] == 0xDD) SlowDecodes.Wait();
        var span = data.Span;
        if (span.Length == 4 && span[3] == 0xEE)
        {
            // As ImagingJobCodec reports libvips running past Imaging:DecodeTimeout.
            throw new JobFailedException(StylizationErrorCode.Timeout, true, "decoding took longer than its budget",
                new MambaSt.Batch.Imaging.ImageException(MambaSt.Batch.Imaging.ImageErrorKind.Timeout, "decode timed out"));
        }

        if (span.Length != 4 || span[3] == 0xFF)
        {
            throw new JobFailedException(StylizationErrorCode.InvalidImage, false, "not an image: corrupt header");
        }

        var rgb = new byte[span[0] * span[1] * 3];
        Array.Fill(rgb, span[2]);
        return new RgbFrame(rgb, span[0], span[1]);
    }

    public byte[] Encode(RgbFrame image, OutputFormat format, int quality) => [(byte)image.Width, (byte)image.Height, image.Rgb[0], (byte)format];
}

internal sealed class FakeModel : IStyleTransfer
{
    private readonly ConcurrentDictionary<string, StyleHandle> _cache = new();

    public ModelIdentity Model { get; } = new("mambast-fake", "1.0");

    public int MaxSide => 1024;

    public int StyleEncodes;

    public ConcurrentQueue<int> RunSizes { get; } = new();

    public StyleHandle GetStyle(string styleKey, Func<RgbFrame> decodeStyle, out bool cacheHit)
    {
        cacheHit = _cache.ContainsKey(styleKey);
        return _cache.GetOrAdd(styleKey, _ =>
        {
            Interlocked.Increment(ref StyleEncodes);
            decodeStyle();
            return new Handle();
        });
    }

    /// <summary>When set, every run throws it (a model that keeps failing).</summary>
    public Exception? ThrowOnRun { get; set; }

    /// <summary>Runs of content images this wide never end on their own: they wait for their token, as an
    /// ONNX Runtime run stops between operators when terminated.</summary>
    public int HangOnWidth { get; set; } = -1;

    /// <summary>Completed when a run that hangs (<see cref="HangOnWidth"/>) has begun.</summary>
    public TaskCompletionSource HangStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyList<RgbFrame> Stylize(StyleHandle style, IReadOnlyList<StylizeItem> items, CancellationToken cancellationToken)
    {
        if (ThrowOnRun is { } failure) throw failure;
        if (items[0].Content.Width == HangOnWidth)
        {
            HangStarted.TrySetResult();
            cancellationToken.WaitHandle.WaitOne();
            cancellationToken.ThrowIfCancellationRequested();
        }

        RunSizes.Enqueue(items.Count);
        if (items.Select(i => (i.Content.Width, i.Content.Height)).Distinct().Count() != 1)
        {
            throw new InvalidOperationException("a run must hold same-size images");
        }

        return items.Select(i => i.Content with { Rgb = i.Content.Rgb.Select(b => (byte)(255 - b)).ToArray() }).ToArray();
    }

    private sealed class Handle : StyleHandle;
}

/// <summary>Keeps every log line written through it, formatted, with its exception's message.</summary>
internal sealed class LogCapture : Microsoft.Extensions.Logging.ILoggerProvider
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private sealed class Logger(LogCapture capture) : Microsoft.Extensions.Logging.ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            capture.Lines.Enqueue(formatter(state, exception) + (exception is null ? "" : " " + exception.Message));
    }
}
