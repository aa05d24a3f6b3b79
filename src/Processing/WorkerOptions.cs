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

    /// <summary>In-process retries of a job's transient failure, before queue-based redelivery. Default 0:
    /// storage calls already retry inside the storage client (docs/reliability.md, "One retry budget"), so a
    /// second in-process layer would only multiply attempts.</summary>
    [Range(0, 10)]
    public int ImmediateRetries { get; set; }

    [Range(0, 60_000)]
    public int ImmediateRetryDelayMs { get; set; } = 500;

    /// <summary>Delays (seconds) of the queue-based redeliveries; their count is the number of redeliveries.
    /// Default 15, 60, 300. Set an empty value for none.</summary>
    public int[]? RedeliveryDelaysSeconds { get; set; }

    public IReadOnlyList<int> EffectiveRedeliveryDelays => RedeliveryDelaysSeconds ?? [15, 60, 300];

    /// <summary>Jobs of one batch fetched, decoded and encoded in parallel.</summary>
    [Range(1, 64)]
    public int IoParallelism { get; set; } = 8;

    /// <summary>Time one job's output lookup, content read and decode may take before that job alone fails with
    /// Timeout (its batch mates go on).</summary>
    [Range(1, 3600, ErrorMessage = "Worker:FetchTimeoutSeconds must be 1..3600 seconds: the deadline of one job's output lookup, content read and decode")]
    public int FetchTimeoutSeconds { get; set; } = 60;

    /// <summary>Time a job may take after its fetch and decode (style, inference, encode and write) before it fails
    /// with Timeout. A model run shared by several jobs is cancelled once every one of them is past its deadline.</summary>
    [Range(1, 3600, ErrorMessage = "Worker:JobTimeoutSeconds must be 1..3600 seconds: the deadline of one job's style, inference and write")]
    public int JobTimeoutSeconds { get; set; } = 300;

    /// <summary>How long shutdown waits for the batch in hand (keep the pod's grace period above it).</summary>
    [Range(1, 3600)]
    public int StopTimeoutSeconds { get; set; } = 120;

    /// <summary>Largest input (content or style) read from storage.</summary>
    [Range(1, long.MaxValue)]
    public long MaxInputBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>Quorum (default: x-delivery-limit, at-least-once dead-lettering to the quarantine queue; RabbitMQ
    /// 3.10 or later) or Classic (brokers older than 3.10, or queues not migrated yet: docs/reliability.md).</summary>
    public QueueType QueueType { get; set; } = QueueType.Quorum;

    /// <summary>Quorum only: deliveries a job may have that end without an answer (its worker crashed, was killed,
    /// or its consumer timed out) before the broker moves it to the quarantine queue.</summary>
    [Range(1, 1000)]
    public int DeliveryLimit { get; set; } = 4;

    /// <summary>How long the error and quarantine queues keep a message (x-message-ttl), in hours; default 14 days.
    /// 0 keeps them until removed by hand (needed to reuse error queues declared before this setting existed).
    /// At most 596 h: x-message-ttl is milliseconds in a signed 32-bit integer.</summary>
    [Range(0, 596)]
    public int ParkedMessageTtlHours { get; set; } = 14 * 24;

    /// <summary>Retries of a whole delivery batch whose fault escaped (a publish that failed, a queue declare
    /// refused). After the last one every job of the batch still unanswered gets its outcome event.</summary>
    public int[]? BatchRetryDelaysMs { get; set; }

    public IReadOnlyList<int> EffectiveBatchRetryDelays => BatchRetryDelaysMs ?? [1000, 5000];

    /// <summary>Consecutive failed model runs (ModelError from inference, not bad inputs) after which the worker
    /// is not ready and takes no batch until a probe run succeeds.</summary>
    [Range(1, 1000)]
    public int UnreadyAfterModelFailures { get; set; } = 5;

    /// <summary>How often an unready worker tries a probe run on a synthetic image.</summary>
    [Range(1, 3600)]
    public int ProbeIntervalSeconds { get; set; } = 10;

    /// <summary>A batch held longer than this makes /health/live fail (a wedged process); keep it above a batch's
    /// bound, ceil(BatchMessageLimit / IoParallelism) x FetchTimeoutSeconds + JobTimeoutSeconds, plus the storage
    /// retry budget (docs/reliability.md).</summary>
    [Range(1, 86_400)]
    public int WedgedAfterSeconds { get; set; } = 900;

    /// <summary>Bytes of style images kept per worker, by location (least recently used out); 0: fetch each batch.</summary>
    [Range(0, long.MaxValue)]
    public long StyleCacheBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>Fault injection for tests and the soak only: a job whose ContentRef contains this text kills the
    /// worker process (SIGKILL, as a decoder segfault or an OOM kill would) before it is decoded. Never set it in
    /// production.</summary>
    public string? CrashOnContentMarker { get; set; }

    public string WorkerId { get; set; } = Environment.GetEnvironmentVariable("HOSTNAME") ?? Environment.MachineName;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Enum.IsDefined(QueueType))
        {
            yield return new ValidationResult($"Worker:QueueType must be Quorum or Classic, got '{QueueType}'", [nameof(QueueType)]);
        }

        if (EffectiveBatchRetryDelays.Count > 10 || EffectiveBatchRetryDelays.Any(d => d is < 0 or > 600_000))
        {
            yield return new ValidationResult("Worker:BatchRetryDelaysMs takes at most 10 delays of 0..600000 ms", [nameof(BatchRetryDelaysMs)]);
        }

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

/// <summary>RabbitMQ queue type of the job, delay and quarantine queues (Worker:QueueType).</summary>
public enum QueueType
{
    Quorum,
    Classic,
}
