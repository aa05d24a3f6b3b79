using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace MambaSt.Batch.Storage.AzureBlobs;

/// <summary>A response whose status is worth another attempt (408, 429, 500, 502, 503, 504).</summary>
internal sealed class TransientStatusException(int status, string? errorCode, TimeSpan? retryAfter)
    : Exception($"HTTP {status} {errorCode}")
{
    public int Status { get; } = status;

    public string? ErrorCode { get; } = errorCode;

    public TimeSpan? RetryAfter { get; } = retryAfter;

    public static bool IsTransient(int status) => status is 408 or 429 or 500 or 502 or 503 or 504;
}

/// <summary>
/// The Blob SDK's retry policy slot (<c>BlobClientOptions.RetryPolicy</c>) filled by a Polly pipeline: retry
/// (exponential backoff with jitter, honouring Retry-After) around a circuit breaker. It wraps each HTTP attempt
/// of every SDK call, single puts, staged blocks, block lists, reads and list pages alike; the SDK's own retries
/// are off. The per-attempt limit is the SDK's network timeout (<c>Retry.NetworkTimeout</c>), which runs after this
/// policy in the pipeline. One instance per store; thread-safe (Polly pipelines are).
/// </summary>
internal sealed class ResilienceRetryPolicy : HttpPipelinePolicy
{
    private readonly ResiliencePipeline _pipeline;
    private long _retries;

    public ResilienceRetryPolicy(StorageResilienceOptions options, ILogger logger)
    {
        _pipeline = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is BrokenCircuitException || IsHandled(args.Outcome.Exception, args.Context.CancellationToken)),
                MaxRetryAttempts = Math.Max(options.MaxRetryAttempts, 0),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.BaseDelay,
                MaxDelay = options.MaxDelay,
                DelayGenerator = args => ValueTask.FromResult(
                    args.Outcome.Exception is TransientStatusException { RetryAfter: { } after }
                        ? (TimeSpan?)(after > options.MaxDelay ? options.MaxDelay : after)
                        : null),
                OnRetry = args =>
                {
                    Interlocked.Increment(ref _retries);
                    logger.LogWarning(
                        "Storage {Operation} failed ({Reason}); retry {Attempt} in {Delay} ms",
                        args.Context.OperationKey,
                        Describe(args.Outcome.Exception),
                        args.AttemptNumber + 1,
                        (long)args.RetryDelay.TotalMilliseconds);
                    return ValueTask.CompletedTask;
                },
            })
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(IsHandled(args.Outcome.Exception, args.Context.CancellationToken)),
                FailureRatio = options.FailureRatio,
                MinimumThroughput = options.MinimumThroughput,
                SamplingDuration = options.SamplingDuration,
                BreakDuration = options.BreakDuration,
            })
            .Build();
    }

    /// <summary>Attempts repeated since this policy was created.</summary>
    public long RetryCount => Interlocked.Read(ref _retries);

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
        throw new NotSupportedException("The blob stores call the SDK asynchronously only.");

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        // The operation key is method and path only: the query may hold a SAS and is never logged.
        var context = ResilienceContextPool.Shared.Get($"{message.Request.Method} {message.Request.Uri.Path}", message.CancellationToken);
        try
        {
            await _pipeline.ExecuteAsync(
                static async (ResilienceContext _, (HttpMessage Message, ReadOnlyMemory<HttpPipelinePolicy> Pipeline) state) =>
                {
                    var (message, pipeline) = state;
                    if (message.HasResponse)
                    {
                        // The previous attempt's unbuffered body (a failed read) holds a connection until disposed.
                        message.Response.ContentStream?.Dispose();
                        var processing = message.ProcessingContext; // a view over the message: the write lands there
                        processing.RetryNumber++;
                    }

                    await ProcessNextAsync(message, pipeline).ConfigureAwait(false);
                    var status = message.Response.Status;
                    if (TransientStatusException.IsTransient(status))
                    {
                        message.Response.Headers.TryGetValue("x-ms-error-code", out var code);
                        message.Response.Headers.TryGetValue("Retry-After", out var retryAfter);
                        throw new TransientStatusException(status, code, RetryAfter(retryAfter));
                    }
                },
                context,
                (message, pipeline)).ConfigureAwait(false);
        }
        catch (TransientStatusException)
        {
            // Retries spent: the last response goes back to the SDK, which raises RequestFailedException with its
            // status and error code.
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    /// <summary>Network errors, transient statuses and attempt timeouts (a cancellation the caller did not ask for).</summary>
    private static bool IsHandled(Exception? e, CancellationToken caller) => e switch
    {
        null => false,
        TransientStatusException or HttpRequestException or IOException => true,
        RequestFailedException { Status: 0 } => true,
        OperationCanceledException => !caller.IsCancellationRequested,
        _ => false,
    };

    /// <summary>A short reason for logs and messages: status or exception type, never a URL.</summary>
    public static string Describe(Exception? e) => e switch
    {
        null => "no exception",
        TransientStatusException t => t.Message,
        OperationCanceledException => "attempt timed out",
        BrokenCircuitException => "circuit open",
        RequestFailedException { Status: 0, InnerException: { } inner } => Describe(inner),
        HttpRequestException { HttpRequestError: var error } => $"network error ({error})",
        _ => e.GetType().Name,
    };

    public static TimeSpan? RetryAfter(string? value)
    {
        if (string.IsNullOrEmpty(value)) return null;
        if (int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds))
        {
            return TimeSpan.FromSeconds(seconds);
        }

        return DateTimeOffset.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var at)
            ? at - DateTimeOffset.UtcNow is var wait && wait > TimeSpan.Zero ? wait : TimeSpan.Zero
            : null;
    }
}
