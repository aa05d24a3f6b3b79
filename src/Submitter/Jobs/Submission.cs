using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Text.Json;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Storage;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Storage;


namespace MambaSt.Batch.Submitter.Jobs;

public sealed record SubmitRequest
{
    public required string Source { get; init; }

    public required string Style { get; init; }

    public required string Output { get; init; }

    public required StylizeOptions Options { get; init; }

    /// <summary>Null for dry runs.</summary>
    public BrokerSettings? Broker { get; init; }

    public string? BatchId { get; init; }

    public bool DryRun { get; init; }

    public int MaxInFlight { get; init; } = 256;

    public int UploadParallelism { get; init; } = 8;

    /// <summary>Replace outputs that another job made (their metadata names another job id): deleted, then the job is sent.</summary>
    public bool Overwrite { get; init; }
}

public sealed record SubmitResult
{
    public required string BatchId { get; init; }

    public required int Total { get; init; }

    public required int AlreadyDone { get; init; }

    public required int AlreadyEnqueued { get; init; }

    public required int Enqueued { get; init; }

    public required int Uploaded { get; init; }

    /// <summary>Outputs there that another job made (shown: the first <see cref="ExistingOutputs.Shown"/>): not done; sent only with <c>--overwrite</c>.</summary>
    public IReadOnlyList<string> Mismatches { get; init; } = [];

    public int MismatchCount { get; init; }

    /// <summary>Mismatched outputs deleted by <c>--overwrite</c> (their jobs are sent).</summary>
    public int Overwritten { get; init; }

    /// <summary>The jobs this run enqueued (or, in a dry run, would enqueue).</summary>
    public required IReadOnlyList<JobRecord> ToEnqueue { get; init; }
}

/// <summary>
/// One <c>submit</c>: lists the source, derives job ids, skips jobs whose output exists or that an earlier
/// run enqueued, uploads local inputs, writes the batch manifest, declares the batch's event queue, then
/// sends the jobs with publisher confirms, recording each confirmed job.
/// </summary>
public sealed class Submission
{
    /// <summary>Called after each confirmed send (tests use it to interrupt a run).</summary>
    public Action<int>? Confirmed { get; init; }

    public async Task<SubmitResult> RunAsync(SubmitRequest request, CancellationToken cancellationToken)
    {
        if (request.MaxInFlight < 1) throw new UsageException("--max-in-flight must be at least 1");
        var output = ArchiveStores.Open(request.Output);
        var (source, sourcePrefix) = OpenSource(request.Source);
        var (styleRef, styleIdentity, styleUpload) = await ResolveStyleAsync(request.Style, output, cancellationToken);

        var items = new List<ArchiveItem>();
        try
        {
            await foreach (var item in source.ListAsync(sourcePrefix, cancellationToken))
            {
                if (ImageFiles.IsImage(item.RelativePath)) items.Add(item);
            }
        }
        catch (IOException ex)
        {
            throw new UnreachableException($"cannot list {request.Source}: {ex.Message}", ex);
        }

        if (items.Count == 0) throw new UsageException($"no images (jpg, png, webp, tiff, ...) under {request.Source}");

        var identities = new string[items.Count];
        await Parallel.ForAsync(0, items.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(2, Environment.ProcessorCount), CancellationToken = cancellationToken },
            async (i, ct) => identities[i] = items[i].Identity ?? await source.IdentifyAsync(items[i], ct));

        var batchId = string.IsNullOrWhiteSpace(request.BatchId) ? JobIdentity.BatchId(source.Location + "|" + sourcePrefix, styleIdentity, request.Options) : request.BatchId;
        ValidateBatchId(batchId);
        var uploadInputs = source.IsLocal && !output.IsLocal;
        var jobs = new List<JobRecord>(items.Count);
        var seen = new HashSet<Guid>();
        for (var i = 0; i < items.Count; i++)
        {
            var jobId = JobIdentity.JobId(identities[i], styleIdentity, request.Options);
            if (!seen.Add(jobId)) continue;
            var outputPath = JobIdentity.OutputName(items[i].RelativePath, request.Options.Format);
            var contentRef = uploadInputs ? output.RefFor(UploadPath(identities[i], items[i].RelativePath)) : items[i].Ref;
            jobs.Add(new JobRecord { JobId = jobId, RelativePath = items[i].RelativePath, ContentRef = contentRef, OutputRef = output.RefFor(outputPath), OutputPath = outputPath });
        }

        JobIdentity.EnsureDistinctOutputs(jobs, request.Options.Format, JobIdentity.NamesIgnoreCase(output.IsLocal));

        var info = new BatchInfo
        {
            BatchId = batchId,
            Source = request.Source,
            Output = output.Location,
            StyleRef = styleRef,
            Options = request.Options,
            Queue = request.Broker?.Queue ?? BrokerSettings.DefaultQueue,
            CreatedAt = DateTimeOffset.UtcNow,
        };

        var existing = await TryLoadAsync(output, batchId, cancellationToken);
        if (existing is not null && (existing.Info.StyleRef != ForRecord(output, styleRef) || existing.Info.Options != request.Options))
        {
            throw new UsageException($"batch '{batchId}' already exists under {output.Location} with another style or options; choose another --batch-id");
        }

        // Done means the output's metadata names this job; an output another job made is reported, and replaced
        // only with --overwrite (issue 21 finding 6).
        var styleSha = styleIdentity.StartsWith("style:sha256:", StringComparison.Ordinal) ? styleIdentity["style:sha256:".Length..] : null;
        var done = new ConcurrentDictionary<Guid, bool>();
        var mismatched = new ConcurrentDictionary<Guid, string>();
        await Parallel.ForEachAsync(jobs, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (job, ct) =>
        {
            var check = await ExistingOutputs.CheckAsync(output, job, request.Options, styleSha, ct);
            if (check.Verdict == OutputVerdict.Done) done[job.JobId] = true;
            else if (check.Verdict == OutputVerdict.Mismatch) mismatched[job.JobId] = check.Difference!;
        });
        var enqueuedBefore = existing?.Enqueued ?? new HashSet<Guid>();
        var toEnqueue = jobs.Where(j => !done.ContainsKey(j.JobId)
            && (mismatched.ContainsKey(j.JobId) ? request.Overwrite : !enqueuedBefore.Contains(j.JobId))).ToList();
        var alreadyEnqueued = jobs.Count(j => !done.ContainsKey(j.JobId) && !mismatched.ContainsKey(j.JobId) && enqueuedBefore.Contains(j.JobId));
        var shownMismatches = jobs.Where(j => mismatched.ContainsKey(j.JobId)).Take(ExistingOutputs.Shown).Select(j => mismatched[j.JobId]).ToList();

        var result = new SubmitResult
        {
            BatchId = batchId, Total = jobs.Count, AlreadyDone = done.Count, AlreadyEnqueued = alreadyEnqueued,
            Enqueued = 0, Uploaded = 0, ToEnqueue = toEnqueue, Mismatches = shownMismatches, MismatchCount = mismatched.Count,
        };
        if (request.DryRun) return result;

        var overwritten = 0;
        if (request.Overwrite && !mismatched.IsEmpty)
        {
            await Parallel.ForEachAsync(jobs.Where(j => mismatched.ContainsKey(j.JobId)), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (job, ct) =>
            {
                if (await output.DeleteAsync(job.OutputPath, ct)) Interlocked.Increment(ref overwritten);
            });
            result = result with { Overwritten = overwritten };
        }

        var broker = request.Broker ?? throw new UsageException("no broker: pass --broker or set Broker__Url");
        if (output is BlobArchiveStore blobOutput) await blobOutput.TryCreateContainerAsync(cancellationToken);
        var uploaded = 0;
        if (styleUpload is not null && await output.UploadIfAbsentAsync(styleUpload.Value.Path, styleUpload.Value.LocalFile, cancellationToken)) uploaded++;
        if (uploadInputs)
        {
            var byId = items.Select((item, i) => (item, id: identities[i])).ToDictionary(x => x.item.RelativePath);
            await Parallel.ForEachAsync(toEnqueue, new ParallelOptions { MaxDegreeOfParallelism = request.UploadParallelism, CancellationToken = cancellationToken }, async (job, ct) =>
            {
                var (item, id) = byId[job.RelativePath];
                if (await output.UploadIfAbsentAsync(UploadPath(id, job.RelativePath), item.Ref, ct)) Interlocked.Increment(ref uploaded);
            });
        }

        var merged = (existing?.Jobs ?? []).Concat(jobs.Select(j => j with { ContentRef = ForRecord(output, j.ContentRef), OutputRef = ForRecord(output, j.OutputRef) }))
            .DistinctBy(j => j.JobId).ToList();
        var recorded = info with { Output = ForRecord(output, info.Output), StyleRef = ForRecord(output, info.StyleRef) };
        if (existing is null) await output.WriteTextAsync(BatchPaths.Batch(batchId), JsonSerializer.Serialize(recorded, JsonLines.Options), cancellationToken);
        await output.WriteTextAsync(BatchPaths.Jobs(batchId), JsonLines.Write(merged), cancellationToken);
        LocalBatchIndex.Remember(batchId, output.Location);
        if (toEnqueue.Count == 0) return result with { Uploaded = uploaded };

        await BatchTopology.EnsureWatchQueueAsync(broker, batchId, cancellationToken);
        var enqueued = await EnqueueAsync(output, info, toEnqueue, broker, request.MaxInFlight, null, Confirmed, cancellationToken);
        return result with { Enqueued = enqueued, Uploaded = uploaded };
    }

    /// <summary>
    /// Sends jobs and records each confirmed one in <c>enqueued-&lt;run&gt;.jsonl</c>, append-only: every second the
    /// confirmations since the last append are appended (and fsynced), and once more at the end, also on cancellation;
    /// with <paramref name="retries"/> (job id to the time stamp of the failure it retries) each line also makes its job
    /// pending again. A failed periodic append is tried again on the next tick with the newer lines; the final append is
    /// always attempted, and when it fails the error says how many confirmed jobs went unrecorded (exit 3, or the send
    /// failure's own code).
    /// </summary>
    public static async Task<int> EnqueueAsync(IArchiveStore output, BatchInfo info, IReadOnlyList<JobRecord> jobs, BrokerSettings broker,
        int maxInFlight, IReadOnlyDictionary<Guid, DateTimeOffset>? retries, Action<int>? confirmedCallback, CancellationToken cancellationToken)
    {
        var log = new RecordLog<EnqueuedRecord>(output, BatchPaths.Enqueued(info.BatchId, BatchPaths.RunId()));
        var runFile = log.RelativePath;
        var confirmed = new ConcurrentQueue<EnqueuedRecord>();
        var unwritten = new List<EnqueuedRecord>(); // taken from the queue, not yet appended (a failed append keeps them)
        var count = 0;
        var appendLock = new SemaphoreSlim(1, 1);
        async Task AppendPendingAsync()
        {
            await appendLock.WaitAsync(CancellationToken.None);
            try
            {
                while (confirmed.TryDequeue(out var r)) unwritten.Add(r);
                if (unwritten.Count == 0) return;
                await log.AppendAsync(unwritten, CancellationToken.None);
                unwritten.Clear();
            }
            finally
            {
                appendLock.Release();
            }
        }

        using var flushStop = new CancellationTokenSource();
        var flushing = Task.Run(async () =>
        {
            while (true)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), flushStop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                try
                {
                    await AppendPendingAsync();
                }
                catch (Exception)
                {
                    // The next tick, or the final append, appends these lines with the newer ones.
                }
            }
        }, CancellationToken.None);

        var submittedAt = DateTimeOffset.UtcNow;
        ExceptionDispatchInfo? sendFailure = null;
        var sent = 0;
        try
        {
            await using var bus = await JobBus.StartAsync(broker, cancellationToken);
            sent = await bus.SendAllAsync(jobs.Select(j => ForMessage(output, ToMessage(info, j, submittedAt))), maxInFlight, job =>
            {
                confirmed.Enqueue(new EnqueuedRecord
                {
                    JobId = job.JobId, At = DateTimeOffset.UtcNow, RetryOf = retries is not null && retries.TryGetValue(job.JobId, out var failedAt) ? failedAt : null,
                });
                confirmedCallback?.Invoke(Interlocked.Increment(ref count));
            }, cancellationToken);
        }
        catch (Exception ex)
        {
            sendFailure = ExceptionDispatchInfo.Capture(ex);
        }

        await flushStop.CancelAsync();
        await flushing;
        Exception? recordFailure = null;
        try
        {
            await AppendPendingAsync();
        }
        catch (Exception ex)
        {
            recordFailure = ex;
        }

        if (recordFailure is not null)
        {
            var unrecorded = $"{unwritten.Count} jobs the broker confirmed could not be recorded in {runFile} under {output.Location}: "
                + $"{StorageLocation.Redact(recordFailure.Message)}. They are queued and will be processed; a later submit of this batch sends them again "
                + "(same job ids; the worker does not recompute an output that exists)";
            if (sendFailure is null) throw new UnreachableException(unrecorded, recordFailure);
            var first = sendFailure.SourceException;
            var code = first switch
            {
                CliException cli => cli.ExitCode,
                OperationCanceledException => ExitCodes.Canceled,
                _ => ExitCodes.Unreachable,
            };
            var why = first is OperationCanceledException ? "canceled" : first.GetBaseException().Message;
            throw new CliException(code, $"sending stopped ({why}), and {unrecorded}", first);
        }

        sendFailure?.Throw();
        return sent;
    }

    /// <summary>Records in the output location keep no SAS that can write there (issue 22): see <see cref="BlobArchiveStore.ForRecord"/>.</summary>
    private static string ForRecord(IArchiveStore output, string reference) => output is BlobArchiveStore blob ? blob.ForRecord(reference) : reference;

    /// <summary>Jobs loaded from the records (retry-failed) get the output's SAS back from the local batch index's location.</summary>
    private static StylizeImage ForMessage(IArchiveStore output, StylizeImage job) => output is BlobArchiveStore blob
        ? job with { ContentRef = blob.ForMessage(job.ContentRef), StyleRef = blob.ForMessage(job.StyleRef), OutputRef = blob.ForMessage(job.OutputRef) }
        : job;

    public static StylizeImage ToMessage(BatchInfo info, JobRecord job, DateTimeOffset submittedAt) => new()
    {
        JobId = job.JobId,
        BatchId = info.BatchId,
        ContentRef = job.ContentRef,
        StyleRef = info.StyleRef,
        OutputRef = job.OutputRef,
        Options = info.Options,
        CorrelationId = job.JobId,
        SubmittedAt = submittedAt,
    };

    public static void ValidateBatchId(string batchId)
    {
        if (batchId.Length is 0 or > 100 || !batchId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new UsageException($"batch id '{batchId}' may contain only letters, digits, '-', '_' and '.' (1 to 100 characters)");
        }
    }

    private static async Task<BatchState?> TryLoadAsync(IArchiveStore output, string batchId, CancellationToken cancellationToken) =>
        await output.ExistsAsync(BatchPaths.Batch(batchId), cancellationToken) ? await BatchState.LoadAsync(output, batchId, cancellationToken) : null;

    private static (IArchiveStore Store, string Prefix) OpenSource(string source)
    {
        if (ArchiveStores.IsBlob(source)) return (ArchiveStores.Open(source), "");
        var full = Path.GetFullPath(source);
        if (File.Exists(full)) return (new LocalArchiveStore(Path.GetDirectoryName(full)!), Path.GetFileName(full));
        if (!Directory.Exists(full)) throw new UsageException($"source '{source}' does not exist (expected a folder, an image file or a blob prefix)");
        return (new LocalArchiveStore(full), "");
    }

    private static async Task<(string Ref, string Identity, (string Path, string LocalFile)? Upload)> ResolveStyleAsync(
        string style, IArchiveStore output, CancellationToken cancellationToken)
    {
        if (ArchiveStores.IsBlob(style))
        {
            var store = (BlobArchiveStore)ArchiveStores.Open(style);
            var item = await store.GetSingleAsync(cancellationToken) ?? throw new UsageException($"style blob '{style}' does not exist");
            return (item.Ref, item.Identity!, null);
        }

        var full = Path.GetFullPath(style);
        if (!File.Exists(full)) throw new UsageException($"style file '{style}' does not exist");
        if (!ImageFiles.IsImage(full)) throw new UsageException($"style file '{style}' is not an image (jpg, png, webp, tiff, ...)");
        await using var stream = File.OpenRead(full);
        var sha = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken));
        var identity = $"style:sha256:{sha}";
        if (output.IsLocal) return (full, identity, null);
        var path = $"{BatchPaths.Root}/styles/{sha}{Path.GetExtension(full).ToLowerInvariant()}";
        return (output.RefFor(path), identity, (path, full));
    }

    private static string UploadPath(string identity, string relativePath) =>
        $"{BatchPaths.Root}/inputs/{identity[(identity.LastIndexOf(':') + 1)..][..16]}/{relativePath}";
}
