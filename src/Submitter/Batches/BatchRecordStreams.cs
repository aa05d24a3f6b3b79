using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

using MambaSt.Batch.Submitter.Storage;

namespace MambaSt.Batch.Submitter.Batches;

/// <summary>
/// Streaming readers of a batch's records (for watch, report, retry and any other reader): every record file is read
/// line by line, never as one string, so a reader's memory does not grow with the size of the records. Enumerations
/// are in file order (record files in name order, segments of a blob record in number order); outcomes are merged
/// with <see cref="BatchState.Merge"/> or <see cref="BatchTally.Merge"/>, which do not depend on order.
/// </summary>
public static class BatchRecords
{
    public static async Task<BatchInfo> ReadInfoAsync(IArchiveStore output, string batchId, CancellationToken cancellationToken)
    {
        var infoText = await output.ReadTextAsync(BatchPaths.Batch(batchId), cancellationToken)
            ?? throw new UsageException($"batch '{batchId}' not found: no {BatchPaths.Batch(batchId)} under {output.Location}");
        try
        {
            return JsonSerializer.Deserialize<BatchInfo>(infoText, JsonLines.Options)
                ?? throw new UsageException($"{BatchPaths.Batch(batchId)} under {output.Location} is empty");
        }
        catch (JsonException ex)
        {
            throw new UsageException($"{BatchPaths.Batch(batchId)} under {output.Location} is not valid JSON: {ex.Message}");
        }
    }

    /// <summary>The jobs of <c>jobs.jsonl</c>, one at a time.</summary>
    public static IAsyncEnumerable<JobRecord> ReadJobsAsync(IArchiveStore output, string batchId, RecordIssues issues, CancellationToken cancellationToken) =>
        JsonLines.ReadAsync<JobRecord>(output.ReadLinesAsync(BatchPaths.Jobs(batchId), cancellationToken), BatchPaths.Jobs(batchId), issues, cancellationToken);

    /// <summary>Every confirmed send (<c>enqueued-*.jsonl</c>, all runs, all segments).</summary>
    public static IAsyncEnumerable<EnqueuedRecord> ReadEnqueuedAsync(IArchiveStore output, string batchId, RecordIssues issues, CancellationToken cancellationToken) =>
        ReadAllAsync<EnqueuedRecord>(output, batchId, "enqueued-", issues, cancellationToken);

    /// <summary>Every outcome <c>watch</c> recorded (<c>events-*.jsonl</c>, all runs, all segments), as recorded: a job may have several.</summary>
    public static IAsyncEnumerable<OutcomeRecord> ReadEventsAsync(IArchiveStore output, string batchId, RecordIssues issues, CancellationToken cancellationToken) =>
        ReadAllAsync<OutcomeRecord>(output, batchId, "events-", issues, cancellationToken);

    private static async IAsyncEnumerable<T> ReadAllAsync<T>(IArchiveStore output, string batchId, string kind, RecordIssues issues,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var files = new List<string>();
        await foreach (var item in output.ListAsync(BatchPaths.Folder(batchId), cancellationToken))
        {
            var name = item.RelativePath[(item.RelativePath.LastIndexOf('/') + 1)..];
            if (name.StartsWith(kind, StringComparison.Ordinal) && name.EndsWith(".jsonl", StringComparison.Ordinal)) files.Add(item.RelativePath);
        }

        files.Sort(StringComparer.Ordinal);
        foreach (var file in files)
        {
            await foreach (var record in JsonLines.ReadAsync<T>(output.ReadLinesAsync(file, cancellationToken), file, issues, cancellationToken)) yield return record;
        }
    }
}

/// <summary>
/// An append-only record file of one run (<c>enqueued-RUN.jsonl</c>, <c>events-RUN.jsonl</c>): each
/// <see cref="AppendAsync"/> writes only the new lines, durably (<see cref="IArchiveStore.AppendLinesAsync"/>), so a
/// flush costs the size of what it adds, not of the whole record. Not thread-safe: one flusher at a time.
/// </summary>
public sealed class RecordLog<T>(IArchiveStore output, string relativePath)
{
    public string RelativePath { get; } = relativePath;

    /// <summary>Bytes handed to storage so far (what the records cost in writes).</summary>
    public long BytesWritten { get; private set; }

    public int Appends { get; private set; }

    public async Task AppendAsync(IReadOnlyCollection<T> records, CancellationToken cancellationToken)
    {
        if (records.Count == 0) return;
        var text = JsonLines.Write(records);
        await output.AppendLinesAsync(RelativePath, text, cancellationToken);
        BytesWritten += Encoding.UTF8.GetByteCount(text);
        Appends++;
    }
}
