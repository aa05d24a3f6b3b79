using System.Collections.Concurrent;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Processing;
using MambaSt.Batch.Storage;
using MambaSt.Batch.Submitter.Storage;

namespace MambaSt.Batch.Submitter.Batches;

public enum OutputVerdict
{
    /// <summary>No output, or (local folder) data left without metadata by a crash, which the worker replaces.</summary>
    Absent,

    /// <summary>The output carries this job's id: same content, style and options (the job id is derived from them).</summary>
    Done,

    /// <summary>An output is there, made by another job: not done, and only <c>--overwrite</c> replaces it.</summary>
    Mismatch,
}

public sealed record OutputCheck(OutputVerdict Verdict, string? Difference);

/// <summary>
/// "Already done" means the output's metadata names this job, not only that a file exists (issue 21 finding 6).
/// The job id is derived from the content, style and options, so a matching id means all three match; the model is
/// checked by the worker, which knows it (submit and watch do not).
/// </summary>
public static class ExistingOutputs
{
    /// <summary>Most mismatches kept for a message; the count goes on.</summary>
    public const int Shown = 20;

    public static async Task<OutputCheck> CheckAsync(IArchiveStore output, JobRecord job, StylizeOptions options, string? styleSha256, CancellationToken cancellationToken)
    {
        var metadata = await output.ReadMetadataAsync(job.OutputPath, cancellationToken);
        if (metadata is null) return new OutputCheck(OutputVerdict.Absent, null);
        var owner = OutputMetadata.Get(metadata, OutputMetadata.JobId);
        if (owner == job.JobId.ToString("D")) return new OutputCheck(OutputVerdict.Done, null);
        if (owner is null)
        {
            return output.IsLocal
                ? new OutputCheck(OutputVerdict.Absent, null)
                : new OutputCheck(OutputVerdict.Mismatch, $"{job.RelativePath}: output {StorageLocation.RedactSecrets(job.OutputRef)} exists without mambast metadata (not written by a worker)");
        }

        var differs = new List<string>();
        if (OutputMetadata.Get(metadata, OutputMetadata.OptionsHash) is { } o && o != OutputMetadata.HashOptions(options)) differs.Add("options");
        if (styleSha256 is not null && OutputMetadata.Get(metadata, OutputMetadata.StyleHash) is { } s && s != styleSha256) differs.Add("style");
        if (differs.Count == 0) differs.Add("content, style or options (another job id)");
        var model = $"{OutputMetadata.Get(metadata, OutputMetadata.ModelId) ?? "unknown"} {OutputMetadata.Get(metadata, OutputMetadata.ModelVersion) ?? ""}".Trim();
        return new OutputCheck(OutputVerdict.Mismatch,
            $"{job.RelativePath} (job {job.JobId}): output {StorageLocation.RedactSecrets(job.OutputRef)} was made by job {owner} of batch "
            + $"{OutputMetadata.Get(metadata, OutputMetadata.BatchId) ?? "unknown"} with model {model}; differs in {string.Join(", ", differs)}");
    }

    public sealed record Found(IReadOnlyList<OutcomeRecord> Done, IReadOnlyList<string> Mismatches, int MismatchCount);

    /// <summary>For <c>watch</c>: the pending jobs of the batch whose output is there and is theirs (streams <c>jobs.jsonl</c>).</summary>
    public static async Task<Found> FindDoneAsync(IArchiveStore output, string batchId, BatchTally tally, CancellationToken cancellationToken)
    {
        if (tally.Pending == 0) return new Found([], [], 0);
        var done = new ConcurrentQueue<OutcomeRecord>();
        var mismatches = new ConcurrentQueue<string>();
        var mismatchCount = 0;
        var pending = BatchRecords.ReadJobsAsync(output, batchId, new RecordIssues(), cancellationToken).Where(j => tally.StatusOf(j.JobId) == JobStatus.Pending);
        await Parallel.ForEachAsync(pending, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (job, ct) =>
        {
            var check = await CheckAsync(output, job, tally.Info.Options, null, ct);
            if (check.Verdict == OutputVerdict.Done)
            {
                done.Enqueue(new OutcomeRecord { JobId = job.JobId, Status = JobStatus.Done, OutputRef = job.OutputRef, Message = "output present", At = DateTimeOffset.UtcNow });
            }
            else if (check.Verdict == OutputVerdict.Mismatch && Interlocked.Increment(ref mismatchCount) <= Shown)
            {
                mismatches.Enqueue(check.Difference!);
            }
        });
        return new Found([.. done], [.. mismatches], mismatchCount);
    }
}
