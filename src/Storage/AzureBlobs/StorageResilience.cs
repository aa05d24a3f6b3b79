using Azure;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

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

/// <summary>Retry (exponential backoff with jitter, honouring Retry-After) around a circuit breaker around a
/// per-attempt timeout. One pipeline per store; Polly pipelines are thread-safe.</summary>
internal static class StorageResilience
{
    public static ResiliencePipeline Build(StorageResilienceOptions options, ILogger logger, Action onRetry)
    {
        return new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<BrokenCircuitException>().Handle<Exception>(e => IsHandled(e)),
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
                    onRetry();
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
                ShouldHandle = new PredicateBuilder().Handle<Exception>(IsHandled),
                FailureRatio = options.FailureRatio,
                MinimumThroughput = options.MinimumThroughput,
                SamplingDuration = options.SamplingDuration,
                BreakDuration = options.BreakDuration,
            })
            .AddTimeout(options.AttemptTimeout)
            .Build();

        static bool IsHandled(Exception e) => e switch
        {
            TransientStatusException or TimeoutRejectedException or HttpRequestException or IOException => true,
            RequestFailedException { Status: 0 } => true,
            TaskCanceledException t => t.InnerException is TimeoutException || t.Message.Contains("timeout", StringComparison.OrdinalIgnoreCase),
            _ => false,
        };
    }

    /// <summary>A short reason for logs and messages: status or exception type, never a URL.</summary>
    public static string Describe(Exception? e) => e switch
    {
        null => "no exception",
        TransientStatusException t => t.Message,
        TimeoutRejectedException => "attempt timed out",
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

    public static bool IsHttpSuccess(int status) => status is >= 200 and < 300;
}
