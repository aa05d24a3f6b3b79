using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

using MambaSt.Batch.Storage;
using MambaSt.Batch.Submitter.Storage;

namespace MambaSt.Batch.Submitter.Batches;

/// <summary>One row of <c>report</c>: a job and its outcome.</summary>
public sealed record ReportRow
{
    public required Guid JobId { get; init; }

    public required string RelativePath { get; init; }

    public required string ContentRef { get; init; }

    public required JobStatus Status { get; init; }

    public required string OutputRef { get; init; }

    public bool Enqueued { get; init; }

    public DateTimeOffset? CompletedAt { get; init; }

    public double? TotalMs { get; init; }

    public double? FetchMs { get; init; }

    public double? InferenceMs { get; init; }

    public string? WorkerId { get; init; }

    public string? ErrorCode { get; init; }

    public string? ErrorMessage { get; init; }
}

public static class BatchReport
{
    /// <summary>
    /// One row per job of the batch; jobs without an event whose output exists and names the job (metadata) count as done. References and
    /// messages are shown without SAS signatures (the records keep them).
    /// </summary>
    public static async Task<IReadOnlyList<ReportRow>> BuildAsync(IArchiveStore output, string batchId, CancellationToken cancellationToken, RecordIssues? issues = null)
    {
        var state = await BatchState.LoadAsync(output, batchId, cancellationToken, issues);
        var rows = new ReportRow[state.Jobs.Count];
        await Parallel.ForAsync(0, state.Jobs.Count, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (i, ct) =>
        {
            var job = state.Jobs[i];
            state.Outcomes.TryGetValue(job.JobId, out var o);
            var status = o?.Status ?? JobStatus.Pending;
            if (status == JobStatus.Pending && (await ExistingOutputs.CheckAsync(output, job, state.Info.Options, null, ct)).Verdict == OutputVerdict.Done) status = JobStatus.Done;
            rows[i] = new ReportRow
            {
                JobId = job.JobId,
                RelativePath = job.RelativePath,
                ContentRef = StorageLocation.RedactSecrets(job.ContentRef),
                Status = status,
                OutputRef = StorageLocation.RedactSecrets(o?.OutputRef ?? job.OutputRef),
                Enqueued = state.Enqueued.Contains(job.JobId),
                CompletedAt = o is { Status: not JobStatus.Pending } ? o.At : null,
                TotalMs = o?.Timings?.TotalMs,
                FetchMs = o?.Timings?.FetchMs,
                InferenceMs = o?.Timings?.InferenceMs,
                WorkerId = o?.WorkerId,
                ErrorCode = status == JobStatus.Failed ? o?.ErrorCode?.ToString() : null,
                ErrorMessage = status == JobStatus.Failed ? StorageLocation.RedactSecrets(o?.Message) : null,
            };
        });
        return rows;
    }

    public static string ToJson(IReadOnlyList<ReportRow> rows) => JsonSerializer.Serialize(rows, new JsonSerializerOptions(JsonLines.Options)
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // a terminal or a file, never HTML: keep "sig=<redacted>" and "&" readable
    });

    public static string ToCsv(IReadOnlyList<ReportRow> rows)
    {
        var sb = new StringBuilder("job_id,relative_path,content_ref,status,output_ref,enqueued,completed_at,total_ms,fetch_ms,inference_ms,worker_id,error_code,error_message\n");
        foreach (var r in rows)
        {
            string[] fields =
            [
                r.JobId.ToString(), r.RelativePath, r.ContentRef, r.Status.ToString().ToLowerInvariant(), r.OutputRef,
                r.Enqueued ? "true" : "false", r.CompletedAt?.ToString("O", CultureInfo.InvariantCulture) ?? "",
                Number(r.TotalMs), Number(r.FetchMs), Number(r.InferenceMs), r.WorkerId ?? "", r.ErrorCode ?? "", r.ErrorMessage ?? "",
            ];
            sb.AppendJoin(',', fields.Select(Escape)).Append('\n');
        }

        return sb.ToString();
    }

    private static string Number(double? value) => value?.ToString("0.###", CultureInfo.InvariantCulture) ?? "";

    private static string Escape(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : field;
}
