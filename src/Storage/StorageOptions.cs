using System.ComponentModel.DataAnnotations;

namespace MambaSt.Batch.Storage;

/// <summary>Section "Storage". Credentials come from the environment (Storage__ConnectionString,
/// Storage__SasUrl, ...) or a secret store, never from appsettings files. At most one of
/// <see cref="ConnectionString"/>, <see cref="SasUrl"/> and <see cref="AccountUrl"/> is set.</summary>
public sealed class StorageOptions
{
    public const string SectionName = "Storage";

    /// <summary>Shared Key connection string, including <c>UseDevelopmentStorage=true</c> and ones with BlobEndpoint.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Account or container URL with a SAS query.</summary>
    public string? SasUrl { get; set; }

    /// <summary>Account URL, used with <see cref="SasToken"/> when set, else DefaultAzureCredential.</summary>
    public string? AccountUrl { get; set; }

    public string? SasToken { get; set; }

    /// <summary>Root for relative local paths; the current directory when unset.</summary>
    public string? LocalRoot { get; set; }

    /// <summary>Blobs up to this size go in one Put Blob; larger ones in blocks.</summary>
    [Range(1, 5000L * 1024 * 1024)]
    public long SinglePutLimitBytes { get; set; } = 32L * 1024 * 1024;

    [Range(1, 4000L * 1024 * 1024)]
    public int BlockSizeBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>Blocks of one upload in flight at once; a forward-only stream buffers this many blocks.</summary>
    [Range(1, 64)]
    public int UploadConcurrency { get; set; } = 4;

    [Range(1, 5000)]
    public int ListPageSize { get; set; } = 1000;

    /// <summary>The Blob service version sent on every request (x-ms-version): pinned below the SDK's newest,
    /// 2026-10-06, which Azurite 3.37 refuses without --skipApiVersionCheck (docs/storage.md).</summary>
    [Required]
    [RegularExpression(@"^\d{4}-\d{2}-\d{2}$")]
    public string ApiVersion { get; set; } = "2026-06-06";

    [Required]
    public StorageResilienceOptions Resilience { get; set; } = new();
}

/// <summary>Polly settings applied to every HTTP attempt against blob storage (the SDK's retry slot).</summary>
public sealed class StorageResilienceOptions
{
    /// <summary>Retries after the first attempt.</summary>
    [Range(0, 50)]
    public int MaxRetryAttempts { get; set; } = 6;

    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Limit for one HTTP attempt (a block, a small blob, a list page, the headers of a read); the SDK's network timeout.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(100);

    /// <summary>Share of failed attempts within <see cref="SamplingDuration"/> that opens the circuit.</summary>
    [Range(0.01, 1.0)]
    public double FailureRatio { get; set; } = 0.5;

    [Range(2, int.MaxValue)]
    public int MinimumThroughput { get; set; } = 20;

    [Range(typeof(TimeSpan), "00:00:00.500", "1.00:00:00")]
    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    [Range(typeof(TimeSpan), "00:00:00.500", "1.00:00:00")]
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(5);
}
