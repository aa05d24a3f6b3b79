using MambaSt.Batch.Submitter.Storage;

namespace MambaSt.Batch.Submitter.Batches;

/// <summary>A batch as its records in storage describe it: its jobs, what was enqueued, the outcomes seen.</summary>
public sealed class BatchState
{
    public required BatchInfo Info { get; init; }

    public required IReadOnlyList<JobRecord> Jobs { get; init; }

    public required IReadOnlySet<Guid> Enqueued { get; init; }

    /// <summary>The outcome per job: a success wins over failures (a retried job that then succeeded is done).</summary>
    public required Dictionary<Guid, OutcomeRecord> Outcomes { get; init; }

    public JobStatus StatusOf(Guid jobId) => Outcomes.TryGetValue(jobId, out var o) ? o.Status : JobStatus.Pending;

    /// <summary>
    /// Adds a record to the outcomes; the result does not depend on the order records are merged in. A success wins;
    /// otherwise the latest record wins, a retry ranking just after the failure it retried (<see cref="OutcomeRecord.RetryOf"/>).
    /// </summary>
    public static void Merge(Dictionary<Guid, OutcomeRecord> outcomes, OutcomeRecord record)
    {
        if (!outcomes.TryGetValue(record.JobId, out var existing)
            || Replaces(existing.Status, existing.At, existing.RetryOf, record))
        {
            outcomes[record.JobId] = record;
        }
    }

    /// <summary><see cref="Merge"/>'s rule on the fields it reads, for callers that keep only those fields per job.</summary>
    public static bool Replaces(JobStatus status, DateTimeOffset at, DateTimeOffset? retryOf, OutcomeRecord record) =>
        status != JobStatus.Done && (record.Status == JobStatus.Done || Rank(record.At, record.RetryOf).CompareTo(Rank(at, retryOf)) >= 0);

    private static (DateTimeOffset At, int Retry) Rank(DateTimeOffset at, DateTimeOffset? retryOf) => retryOf is { } failedAt ? (failedAt, 1) : (at, 0);

    /// <summary>The pending outcome that a confirmed send of <c>retry-failed</c> stands for.</summary>
    public static OutcomeRecord Retried(EnqueuedRecord sent, DateTimeOffset failedAt) => new()
    {
        JobId = sent.JobId, Status = JobStatus.Pending, Message = "resubmitted by retry-failed", At = sent.At, RetryOf = failedAt,
    };

    /// <summary>
    /// The whole batch, records streamed. Keeps every job record and its full outcome: for <c>report</c> and
    /// <c>submit</c>, whose output is that size anyway. <see cref="BatchTally"/> is the compact form for
    /// <c>watch</c> and the retry commands.
    /// </summary>
    public static async Task<BatchState> LoadAsync(IArchiveStore output, string batchId, CancellationToken cancellationToken, RecordIssues? issues = null)
    {
        issues ??= new RecordIssues();
        var info = await BatchRecords.ReadInfoAsync(output, batchId, cancellationToken);
        var jobs = new List<JobRecord>();
        await foreach (var job in BatchRecords.ReadJobsAsync(output, batchId, issues, cancellationToken)) jobs.Add(job);
        var enqueued = new HashSet<Guid>();
        var outcomes = new Dictionary<Guid, OutcomeRecord>();
        await foreach (var e in BatchRecords.ReadEnqueuedAsync(output, batchId, issues, cancellationToken))
        {
            enqueued.Add(e.JobId);
            if (e.RetryOf is { } failedAt) Merge(outcomes, Retried(e, failedAt));
        }

        await foreach (var o in BatchRecords.ReadEventsAsync(output, batchId, issues, cancellationToken)) Merge(outcomes, o);
        return new BatchState { Info = info, Jobs = jobs, Enqueued = enqueued, Outcomes = outcomes, Issues = issues };
    }

    /// <summary>Malformed record lines met while loading.</summary>
    public RecordIssues Issues { get; init; } = new();
}

/// <summary>
/// This machine's index of batches submitted from it: batch id to output location, so <c>watch</c>,
/// <c>report</c> and <c>retry-failed</c> need only <c>--batch-id</c>. Folder: MAMBAST_STATE_DIR, else
/// $XDG_STATE_HOME/mambast, else ~/.local/state/mambast.
/// </summary>
public static class LocalBatchIndex
{
    public static string Directory
    {
        get
        {
            var explicitDir = Environment.GetEnvironmentVariable("MAMBAST_STATE_DIR");
            if (!string.IsNullOrEmpty(explicitDir)) return explicitDir;
            var xdg = Environment.GetEnvironmentVariable("XDG_STATE_HOME");
            var baseDir = string.IsNullOrEmpty(xdg)
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state")
                : xdg;
            return Path.Combine(baseDir, "mambast");
        }
    }

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Records the output location as given, SAS included (watch, report and retry-failed need it), in a file only its owner may read.</summary>
    public static void Remember(string batchId, string output)
    {
        try
        {
            var dir = Path.Combine(Directory, "batches");
            System.IO.Directory.CreateDirectory(dir);
            var file = Path.Combine(dir, batchId + ".txt");
            var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = OwnerOnly;
                if (File.Exists(file)) File.SetUnixFileMode(file, OwnerOnly); // a file an older version wrote, before the SAS goes in
            }

            using (var writer = new StreamWriter(file, options)) writer.Write(output);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    public static string Resolve(string batchId, string? output)
    {
        if (!string.IsNullOrEmpty(output)) return output;
        var file = Path.Combine(Directory, "batches", batchId + ".txt");
        return File.Exists(file)
            ? File.ReadAllText(file).Trim()
            : throw new UsageException($"batch '{batchId}' was not submitted from this machine: pass --output <the output location given to submit>");
    }
}
