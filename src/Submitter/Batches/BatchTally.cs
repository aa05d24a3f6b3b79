using System.Runtime.InteropServices;

using MambaSt.Batch.Submitter.Storage;

namespace MambaSt.Batch.Submitter.Batches;

/// <summary>What <c>watch</c> and the retry commands need to know of one job: 32 bytes, no strings.</summary>
[StructLayout(LayoutKind.Auto)]
public struct JobProgress
{
    public JobStatus Status;

    /// <summary>Whether an outcome (or a retry's pending outcome) was merged.</summary>
    public bool HasOutcome;

    /// <summary>UTC ticks of the ranking outcome's <see cref="OutcomeRecord.At"/>.</summary>
    public long AtTicks;

    /// <summary>UTC ticks of its <see cref="OutcomeRecord.RetryOf"/>; 0 when none.</summary>
    public long RetryOfTicks;

    /// <summary>UTC ticks of the latest confirmed send of the job; 0 when the broker never confirmed one.</summary>
    public long LastSentTicks;
}

/// <summary>
/// A batch's progress in compact form: per job id a <see cref="JobProgress"/>, plus running counts, merged from
/// streamed records with the same rules as <see cref="BatchState.Merge"/>. Memory is bounded by the number of jobs,
/// about 60 bytes each (a Dictionary entry of a Guid and a 32-byte struct): 1,000,000 jobs take about 60 MB (up to
/// twice that for a moment while the table grows), however many records (events, sends, retries) there are.
/// Job records themselves (paths, references: about 0.5 KB each) are streamed again when needed, never kept.
/// </summary>
public sealed class BatchTally
{
    private readonly Dictionary<Guid, JobProgress> _jobs;

    public BatchTally(int capacity = 0) => _jobs = new Dictionary<Guid, JobProgress>(capacity);

    public required BatchInfo Info { get; init; }

    public RecordIssues Issues { get; init; } = new();

    public int Total => _jobs.Count;

    public int Done { get; private set; }

    public int Failed { get; private set; }

    public int Settled => Done + Failed;

    public int Pending => Total - Settled;

    public bool Contains(Guid jobId) => _jobs.ContainsKey(jobId);

    public JobStatus StatusOf(Guid jobId) => _jobs.TryGetValue(jobId, out var p) ? p.Status : JobStatus.Pending;

    public bool TryGet(Guid jobId, out JobProgress progress) => _jobs.TryGetValue(jobId, out progress);

    public IEnumerable<KeyValuePair<Guid, JobProgress>> Jobs => _jobs;

    public void AddJob(Guid jobId) => _jobs.TryAdd(jobId, default);

    /// <summary>Merges an outcome of a job of the batch (others are ignored: false).</summary>
    public bool Merge(OutcomeRecord record)
    {
        ref var p = ref CollectionsMarshal.GetValueRefOrNullRef(_jobs, record.JobId);
        if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref p)) return false;
        var retryOf = record.RetryOf?.UtcTicks ?? 0;
        var at = record.At.UtcTicks;
        if (p.HasOutcome && (p.Status == JobStatus.Done || (record.Status != JobStatus.Done && Rank(at, retryOf).CompareTo(Rank(p.AtTicks, p.RetryOfTicks)) < 0)))
        {
            return true;
        }

        Count(p.Status, -1);
        p.Status = record.Status;
        p.HasOutcome = true;
        p.AtTicks = at;
        p.RetryOfTicks = retryOf;
        Count(p.Status, +1);
        return true;
    }

    /// <summary>A confirmed send: the job's pending clock restarts, and a retry's send makes it pending again.</summary>
    public void Sent(EnqueuedRecord sent)
    {
        ref var p = ref CollectionsMarshal.GetValueRefOrNullRef(_jobs, sent.JobId);
        if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref p)) return;
        p.LastSentTicks = Math.Max(p.LastSentTicks, sent.At.UtcTicks);
        if (sent.RetryOf is { } failedAt) Merge(BatchState.Retried(sent, failedAt));
    }

    /// <summary>The jobs with no outcome yet, with the time of their latest confirmed send (null: never confirmed).</summary>
    public IEnumerable<(Guid JobId, DateTimeOffset? SentAt)> PendingJobs()
    {
        foreach (var (id, p) in _jobs)
        {
            if (p.Status == JobStatus.Pending) yield return (id, p.LastSentTicks == 0 ? null : new DateTimeOffset(p.LastSentTicks, TimeSpan.Zero));
        }
    }

    /// <summary>How long the longest-waiting pending job has waited since its latest confirmed send (null: none pending, or none sent).</summary>
    public TimeSpan? OldestPending(DateTimeOffset now)
    {
        long oldest = 0;
        foreach (var p in _jobs.Values)
        {
            if (p.Status == JobStatus.Pending && p.LastSentTicks != 0 && (oldest == 0 || p.LastSentTicks < oldest)) oldest = p.LastSentTicks;
        }

        return oldest == 0 ? null : now - new DateTimeOffset(oldest, TimeSpan.Zero);
    }

    private void Count(JobStatus status, int delta)
    {
        if (status == JobStatus.Done) Done += delta;
        else if (status == JobStatus.Failed) Failed += delta;
    }

    private static (long At, int Retry) Rank(long at, long retryOf) => retryOf != 0 ? (retryOf, 1) : (at, 0);

    /// <summary>Streams the batch's records into a tally: jobs, sends, then outcomes.</summary>
    public static async Task<BatchTally> LoadAsync(IArchiveStore output, string batchId, CancellationToken cancellationToken)
    {
        var issues = new RecordIssues();
        var tally = new BatchTally { Info = await BatchRecords.ReadInfoAsync(output, batchId, cancellationToken), Issues = issues };
        await foreach (var job in BatchRecords.ReadJobsAsync(output, batchId, issues, cancellationToken)) tally.AddJob(job.JobId);
        await foreach (var sent in BatchRecords.ReadEnqueuedAsync(output, batchId, issues, cancellationToken)) tally.Sent(sent);
        await foreach (var outcome in BatchRecords.ReadEventsAsync(output, batchId, issues, cancellationToken)) tally.Merge(outcome);
        return tally;
    }
}
