using System.ComponentModel.DataAnnotations;

namespace MambaSt.Batch.Processing;

/// <summary>How the worker takes jobs from the broker. Section "Worker".</summary>
public sealed class WorkerOptions : IValidatableObject
{
    /// <summary>Longest redelivery delay: a week (RabbitMQ's x-message-ttl is in milliseconds, a 32-bit int).</summary>
    public const int MaxRedeliveryDelaySeconds = 7 * 24 * 3600;

    public const string Section = "Worker";

    [Required, RegularExpression("^[A-Za-z0-9._:-]+$", ErrorMessage = "Worker:QueueName may contain letters, digits, '.', '_', ':' and '-' only.")]
    public string QueueName { get; set; } = "stylize-image";

    /// <summary>Messages per batch: one ONNX Runtime run per (style, size) group of a batch.</summary>
    [Range(1, 256)]
    public int BatchMessageLimit { get; set; } = 8;

    /// <summary>How long a partial batch waits for more messages.</summary>
    [Range(1, 60_000)]
    public int BatchTimeLimitMs { get; set; } = 250;

    /// <summary>Batches processed at once. 2 overlaps I/O and decode of one batch with inference of the other.</summary>
    [Range(1, 16)]
    public int ConcurrentBatches { get; set; } = 2;

    /// <summary>Unacknowledged messages held by this worker; must cover BatchMessageLimit x ConcurrentBatches.</summary>
    [Range(1, 4096)]
    public int PrefetchCount { get; set; } = 32;

    /// <summary>In-process retries of a job's transient failure, before queue-based redelivery.</summary>
    [Range(0, 10)]
    public int ImmediateRetries { get; set; } = 2;

    [Range(0, 60_000)]
    public int ImmediateRetryDelayMs { get; set; } = 500;

    /// <summary>Delays (seconds) of the queue-based redeliveries; their count is the number of redeliveries.
    /// Default 15, 60, 300. Set an empty value for none.</summary>
    public int[]? RedeliveryDelaysSeconds { get; set; }

    public IReadOnlyList<int> EffectiveRedeliveryDelays => RedeliveryDelaysSeconds ?? [15, 60, 300];

    /// <summary>Jobs of one batch fetched, decoded and encoded in parallel.</summary>
    [Range(1, 64)]
    public int IoParallelism { get; set; } = 8;

    /// <summary>Time a job may take end to end before it fails with Timeout.</summary>
    [Range(1, 3600)]
    public int JobTimeoutSeconds { get; set; } = 300;

    /// <summary>How long shutdown waits for the batch in hand (keep the pod's grace period above it).</summary>
    [Range(1, 3600)]
    public int StopTimeoutSeconds { get; set; } = 120;

    /// <summary>Largest input (content or style) read from storage.</summary>
    [Range(1, long.MaxValue)]
    public long MaxInputBytes { get; set; } = 64L * 1024 * 1024;

    public string WorkerId { get; set; } = Environment.GetEnvironmentVariable("HOSTNAME") ?? Environment.MachineName;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var delays = EffectiveRedeliveryDelays;
        if (delays.Count > 20)
        {
            yield return new ValidationResult($"Worker:RedeliveryDelaysSeconds has {delays.Count} entries; at most 20", [nameof(RedeliveryDelaysSeconds)]);
        }

        for (var i = 0; i < delays.Count; i++)
        {
            if (delays[i] is < 1 or > MaxRedeliveryDelaySeconds)
            {
                yield return new ValidationResult(
                    $"Worker:RedeliveryDelaysSeconds:{i} is {delays[i]}; each delay must be 1..{MaxRedeliveryDelaySeconds} seconds",
                    [nameof(RedeliveryDelaysSeconds)]);
            }
        }
    }
}
