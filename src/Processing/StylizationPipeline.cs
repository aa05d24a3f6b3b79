using System.Diagnostics;
using System.Security.Cryptography;
using MambaSt.Batch.Contracts;
using MambaSt.Batch.Processing.Ports;
using MambaSt.Batch.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Processing;

/// <summary>
/// Runs one batch of jobs: fetch and decode (in parallel, bounded), encode each style once (through the
/// style cache), one model run per (style, size) group, encode and write each output (create-if-absent).
/// Every job gets its own outcome; one bad image never fails its batch mates. Transient failures are
/// retried in process; what still fails is returned as a failure for the caller to redeliver.
/// Deadlines are per job: Worker:FetchTimeoutSeconds bounds a job's output lookup, content read and decode;
/// Worker:JobTimeoutSeconds, counted from the end of its decode, bounds the rest. A job past its deadline fails
/// alone with Timeout. Cancellation of <c>cancellationToken</c> (shutdown) propagates as
/// <see cref="OperationCanceledException"/>.
/// Thread-safe; one instance per process.
/// </summary>
public sealed class StylizationPipeline(
    IJobStorage storage,
    IJobImageCodec codec,
    IStyleTransfer model,
    StylizationMetrics metrics,
    IOptions<WorkerOptions> options,
    ILogger<StylizationPipeline> logger,
    ModelHealth? health = null,
    StyleBytesCache? styles = null)
{
    private readonly WorkerOptions _options = options.Value;

    public ModelIdentity Model => model.Model;

    /// <summary>One outcome per job, in the order of <paramref name="jobs"/>.</summary>
    public async Task<IReadOnlyList<JobOutcome>> RunAsync(IReadOnlyList<StylizeImage> jobs, CancellationToken cancellationToken)
    {
        using var activity = StylizationMetrics.ActivitySource.StartActivity("stylize-batch");
        activity?.SetTag("mambast.batch.size", jobs.Count);
        metrics.Batch(jobs.Count);
        using var held = health?.BatchInHand();

        var states = jobs.Select(j => new JobState(j)).ToArray();
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = _options.IoParallelism, CancellationToken = cancellationToken };
        var fetchTimeout = TimeSpan.FromSeconds(_options.FetchTimeoutSeconds);

        await Parallel.ForEachAsync(states, parallel, async (s, token) =>
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(token);
            deadline.CancelAfter(fetchTimeout);
            await Guard([s], cancellationToken, deadline.Token, () => PrepareAsync(s, deadline.Token));
            s.Deadline = Stopwatch.GetTimestamp() + (long)(_options.JobTimeoutSeconds * (double)Stopwatch.Frequency);
        });
        await EncodeStylesAsync(states.Where(s => s.Pending).ToArray(), cancellationToken);
        await InferAsync(states.Where(s => s.Pending).ToArray(), parallel, cancellationToken);

        var outcomes = states.Select(s => s.ToOutcome(model.Model, _options.WorkerId)).ToArray();
        foreach (var o in outcomes)
        {
            if (o.Completed is { } done)
            {
                metrics.JobCompleted(done.Reused);
                metrics.Stage("total", done.Timings.TotalMs);
            }
        }

        return outcomes;
    }

    /// <summary>The completion of <paramref name="job"/> if some delivery of it wrote its output (metadata of this
    /// job, options and model) and was stopped before it could say so; null when there is no such output.
    /// Reads the output's properties only: no content fetch, no decode, no model run.</summary>
    public async Task<ImageStylized?> FindDoneAsync(StylizeImage job, CancellationToken cancellationToken)
    {
        var existing = await storage.FindOutputAsync(job.OutputRef, cancellationToken);
        if (existing is null || !OutputMetadata.IsSameJob(existing.Metadata, job, model.Model)) return null;
        var s = new JobState(job);
        ReuseOrRefuse(s, existing);
        return s.ToOutcome(model.Model, _options.WorkerId).Completed;
    }

    private async Task PrepareAsync(JobState s, CancellationToken ct)
    {
        Validate(s.Job);
        if (_options.CrashOnContentMarker is { Length: > 0 } marker && s.Job.ContentRef.Contains(marker, StringComparison.Ordinal))
        {
            logger.LogCritical("Job {JobId}: Worker:CrashOnContentMarker matched; killing this process (fault injection)", s.Job.JobId);
            Process.GetCurrentProcess().Kill();
        }

        s.Stage = "fetch (output lookup)";
        var existing = await Retry(() => storage.FindOutputAsync(s.Job.OutputRef, ct), ct);
        if (existing is not null && OutputMetadata.Get(existing.Metadata, OutputMetadata.JobId) is null)
        {
            // Data without metadata: left by a crash of a writer that wrote the metadata second (a local folder before
            // issue 21). It counts as absent: a local store's create-if-absent replaces it; a blob store, whose metadata
            // is written with the data, reports it present and the write below refuses it.
            existing = null;
        }

        if (existing is not null)
        {
            ReuseOrRefuse(s, existing);
            return;
        }

        s.Stage = "fetch (content read)";
        var sw = Stopwatch.StartNew();
        var bytes = await Retry(() => storage.ReadAsync(s.Job.ContentRef, _options.MaxInputBytes, ct), ct);
        s.FetchMs += sw.Elapsed.TotalMilliseconds;

        s.Stage = "decode";
        sw.Restart();
        var maxSide = Math.Min(s.Job.Options.MaxSide > 0 ? s.Job.Options.MaxSide : StylizeOptions.DefaultMaxSide, model.MaxSide);
        var decoding = Task.Run(() => codec.Decode(bytes, maxSide), CancellationToken.None);
        try
        {
            s.Content = await decoding.WaitAsync(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // A decode cannot be interrupted from here: it runs on until it ends or Imaging:DecodeTimeout stops
            // it, and its result is dropped (observed, so a late failure is not an unobserved task exception).
            _ = decoding.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            throw;
        }

        s.DecodeMs = sw.Elapsed.TotalMilliseconds;
        metrics.Stage("fetch", s.FetchMs);
        metrics.Stage("decode", s.DecodeMs);
    }

    /// <summary>Refuses a message that cannot be processed, before any fetch or inference: permanent.</summary>
    internal static void Validate(StylizeImage job)
    {
        static JobFailedException Bad(string why) => new(StylizationErrorCode.InvalidRequest, false, why);

        if (job.Options is not { } o) throw Bad("the message has no Options");
        if (string.IsNullOrWhiteSpace(job.BatchId)) throw Bad("BatchId is empty");
        if (job.BatchId.Length > 256 || job.BatchId.Trim() != job.BatchId || !job.BatchId.All(c => c is >= ' ' and <= '~'))
        {
            throw Bad($"BatchId '{StorageLocation.Redact(job.BatchId)}' must be printable ASCII without leading or trailing spaces (at most 256 characters): it is stored as output metadata and sent as an event header");
        }

        if (string.IsNullOrWhiteSpace(job.ContentRef)) throw Bad("ContentRef is empty");
        if (string.IsNullOrWhiteSpace(job.StyleRef)) throw Bad("StyleRef is empty");
        if (string.IsNullOrWhiteSpace(job.OutputRef)) throw Bad("OutputRef is empty");
        if (!Enum.IsDefined(o.Format)) throw Bad($"Options.Format {(int)o.Format} is not one of {string.Join(", ", Enum.GetNames<OutputFormat>())}");
        if (!float.IsFinite(o.Strength)) throw Bad($"Options.Strength is {o.Strength}; expected a number in [0, 1]");
    }

    private void ReuseOrRefuse(JobState s, StoredOutput existing)
    {
        if (OutputMetadata.IsSameJob(existing.Metadata, s.Job, model.Model))
        {
            s.Reused = true;
            s.OutputBytes = existing.Size;
            s.Width = OutputMetadata.GetInt(existing.Metadata, OutputMetadata.Width);
            s.Height = OutputMetadata.GetInt(existing.Metadata, OutputMetadata.Height);
            s.Done = true;
            logger.LogInformation("Job {JobId} of batch {BatchId}: output {OutputRef} already exists for this job and model; not computed again",
                s.Job.JobId, s.Job.BatchId, StorageLocation.RedactSecrets(s.Job.OutputRef));
            return;
        }

        var owner = OutputMetadata.Get(existing.Metadata, OutputMetadata.JobId) ?? "unknown";
        s.Fail(new JobFailedException(StylizationErrorCode.StorageUnavailable, false,
            $"output {StorageLocation.RedactSecrets(s.Job.OutputRef)} already exists and was written by job {owner} (model {OutputMetadata.Get(existing.Metadata, OutputMetadata.ModelVersion) ?? "unknown"}); "
            + $"differs in {OutputMetadata.Differences(existing.Metadata, s.Job, model.Model)}; refusing to overwrite (submit --overwrite replaces it)"));
    }

    private async Task EncodeStylesAsync(JobState[] pending, CancellationToken shutdown)
    {
        foreach (var group in pending.GroupBy(s => s.Job.StyleRef, StringComparer.Ordinal))
        {
            shutdown.ThrowIfCancellationRequested();
            var members = Unexpired(group, "style");
            if (members.Length == 0) continue;
            using var deadline = Until(members, shutdown);
            var ct = deadline.Token;
            await Guard(members, shutdown, ct, async () =>
            {
                var sw = Stopwatch.StartNew();
                if (styles is null || !styles.TryGet(group.Key, out var bytes))
                {
                    bytes = await Retry(() => storage.ReadAsync(group.Key, _options.MaxInputBytes, ct), ct);
                    styles?.Add(group.Key, bytes);
                }

                var fetchMs = sw.Elapsed.TotalMilliseconds;
                var hash = Convert.ToHexStringLower(SHA256.HashData(bytes.Span));

                sw.Restart();
                var handle = model.GetStyle(hash, () => codec.Decode(bytes, model.MaxSide), out var hit);
                var encodeMs = sw.Elapsed.TotalMilliseconds;
                metrics.StyleCache(hit);
                metrics.Stage("style_encode", encodeMs);
                foreach (var s in members)
                {
                    s.Style = handle;
                    s.StyleHash = hash;
                    s.FetchMs += fetchMs;
                    s.StyleEncodeMs = encodeMs;
                }
            });
        }
    }

    /// <summary>One run per (style, size) group, each group's outputs written before the next group runs: a group
    /// that runs long (until its jobs' deadline) does not make the jobs of groups before it late.</summary>
    private async Task InferAsync(JobState[] pending, ParallelOptions parallel, CancellationToken shutdown)
    {
        var groups = pending.Where(s => s.Pending).GroupBy(s => (s.StyleHash, s.Content!.Width, s.Content.Height));
        foreach (var group in groups)
        {
            shutdown.ThrowIfCancellationRequested();
            var members = Unexpired(group, "inference");
            if (members.Length == 0) continue;
            using var deadline = Until(members, shutdown);
            var ct = deadline.Token;
            await Guard(members, shutdown, ct, () =>
            {
                using var activity = StylizationMetrics.ActivitySource.StartActivity("inference");
                activity?.SetTag("mambast.inference.batch_size", members.Length);
                var sw = Stopwatch.StartNew();
                var items = members.Select(s => new StylizeItem(s.Content!, s.Job.Options.Seed, Math.Clamp(s.Job.Options.Strength, 0f, 1f), s.Job.Options.PreserveColor)).ToArray();
                IReadOnlyList<RgbFrame> results;
                try
                {
                    results = model.Stylize(members[0].Style!, items, ct);
                }
                catch (Exception ex) when (ErrorClassifier.Classify(ex).Code == StylizationErrorCode.ModelError)
                {
                    // The model's own failure (not a bad input): counts toward readiness (ModelHealth).
                    health?.RunFailed();
                    throw;
                }

                health?.RunSucceeded();
                var ms = sw.Elapsed.TotalMilliseconds;
                metrics.InferenceGroup(members.Length);
                metrics.Stage("inference", ms / members.Length);
                for (var i = 0; i < members.Length; i++)
                {
                    members[i].Result = results[i];
                    members[i].Quality = OutputQualityMeter.Measure(members[i].Content!, results[i]);
                    members[i].InferenceMs = ms / members.Length;
                    members[i].Content = null;
                }

                return Task.CompletedTask;
            });

            await Parallel.ForEachAsync(members.Where(s => s.Pending), parallel, async (s, token) =>
            {
                if (Unexpired([s], "write").Length == 0) return;
                using var writeDeadline = Until([s], token);
                await Guard([s], shutdown, writeDeadline.Token, () => WriteAsync(s, writeDeadline.Token));
            });
        }
    }

    private async Task WriteAsync(JobState s, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var result = s.Result!;
        var encoded = codec.Encode(result, s.Job.Options.Format, s.Job.Options.Quality);
        s.EncodeMs = sw.Elapsed.TotalMilliseconds;
        metrics.Stage("encode", s.EncodeMs);

        sw.Restart();
        var metadata = OutputMetadata.For(s.Job, model.Model, s.StyleHash!, result.Width, result.Height);
        var created = await Retry(() => storage.WriteOutputIfAbsentAsync(s.Job.OutputRef, encoded, ContentTypes.For(s.Job.Options.Format), metadata, ct), ct);
        s.WriteMs = sw.Elapsed.TotalMilliseconds;
        metrics.Stage("write", s.WriteMs);
        s.Result = null;
        if (!created)
        {
            // Another delivery of this job won the race; it is done if the stored output is ours.
            var existing = await Retry(() => storage.FindOutputAsync(s.Job.OutputRef, ct), ct);
            if (existing is null)
            {
                throw new JobFailedException(StylizationErrorCode.StorageUnavailable, true, $"output {StorageLocation.RedactSecrets(s.Job.OutputRef)} was reported present, then absent");
            }

            ReuseOrRefuse(s, existing);
            return;
        }

        s.Width = result.Width;
        s.Height = result.Height;
        s.OutputBytes = encoded.Length;
        s.Done = true;
    }

    /// <summary>The members still within their deadline; the others fail with Timeout before <paramref name="stage"/>.</summary>
    private JobState[] Unexpired(IEnumerable<JobState> group, string stage)
    {
        var now = Stopwatch.GetTimestamp();
        var members = new List<JobState>();
        foreach (var s in group)
        {
            if (!s.Pending) continue;
            s.Stage = stage;
            if (s.Deadline > now)
            {
                members.Add(s);
                continue;
            }

            TimedOut(s, null);
        }

        return [.. members];
    }

    /// <summary>A token cancelled by <paramref name="outer"/> or once the last of <paramref name="members"/>' deadlines
    /// has passed: work shared by several jobs stops only when none of them has time left.</summary>
    private static CancellationTokenSource Until(IReadOnlyList<JobState> members, CancellationToken outer)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(outer);
        var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), members.Max(m => m.Deadline));
        cts.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);
        return cts;
    }

    private void TimedOut(JobState s, Exception? cause)
    {
        var (setting, seconds) = s.Deadline == 0 ? ("Worker:FetchTimeoutSeconds", _options.FetchTimeoutSeconds) : ("Worker:JobTimeoutSeconds", _options.JobTimeoutSeconds);
        var failure = new JobFailedException(StylizationErrorCode.Timeout, true, $"job did not finish its {s.Stage} within {setting}={seconds}", cause);
        s.Fail(failure);
        logger.LogWarning("Job {JobId} of batch {BatchId} failed: {ErrorCode} (transient: {Transient}): {Message}",
            s.Job.JobId, s.Job.BatchId, failure.Code, failure.Transient, failure.Message);
    }

    /// <summary>Runs work for some jobs. Shutdown (<paramref name="shutdown"/>) propagates; the jobs' own deadline
    /// (<paramref name="deadline"/>) fails them with Timeout; any other failure, a cancellation from elsewhere (a
    /// client's own timeout) included, becomes those jobs' outcome. Their batch mates go on.</summary>
    private async Task Guard(JobState[] members, CancellationToken shutdown, CancellationToken deadline, Func<Task> work)
    {
        if (members.All(m => !m.Pending)) return;
        try
        {
            await work();
        }
        catch (OperationCanceledException) when (shutdown.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException ex) when (deadline.IsCancellationRequested)
        {
            foreach (var m in members.Where(m => m.Pending)) TimedOut(m, ex);
        }
        catch (Exception ex)
        {
            var failure = ErrorClassifier.Classify(ex);
            foreach (var m in members)
            {
                m.Fail(failure);
                logger.LogWarning(ex, "Job {JobId} of batch {BatchId} failed: {ErrorCode} (transient: {Transient}): {Message}",
                    m.Job.JobId, m.Job.BatchId, failure.Code, failure.Transient, failure.Message);
            }
        }
    }

    /// <summary>In-process retries with exponential backoff for transient failures.</summary>
    private async Task<T> Retry<T>(Func<Task<T>> action, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await action();
            }
            catch (Exception ex) when (ex is not OperationCanceledException && attempt < _options.ImmediateRetries && ErrorClassifier.Classify(ex).Transient)
            {
                var delay = TimeSpan.FromMilliseconds(_options.ImmediateRetryDelayMs * Math.Pow(2, attempt));
                logger.LogDebug(ex, "Transient failure, retry {Attempt} in {Delay}", attempt + 1, delay);
                await Task.Delay(delay, ct);
            }
        }
    }

    private sealed class JobState(StylizeImage job)
    {
        private readonly long _started = Stopwatch.GetTimestamp();

        public StylizeImage Job { get; } = job;

        /// <summary>Where the job is, for a Timeout's message.</summary>
        public string Stage { get; set; } = "fetch";

        /// <summary>Stopwatch timestamp after which the rest of the job (Worker:JobTimeoutSeconds) is late; 0 while it fetches.</summary>
        public long Deadline { get; set; }

        public RgbFrame? Content { get; set; }

        public RgbFrame? Result { get; set; }

        public StyleHandle? Style { get; set; }

        public string? StyleHash { get; set; }

        public JobFailedException? Failure { get; private set; }

        public bool Done { get; set; }

        public bool Reused { get; set; }

        public OutputQuality? Quality { get; set; }

        public bool Pending => !Done && Failure is null;

        public double FetchMs { get; set; }

        public double DecodeMs { get; set; }

        public double StyleEncodeMs { get; set; }

        public double InferenceMs { get; set; }

        public double EncodeMs { get; set; }

        public double WriteMs { get; set; }

        public int Width { get; set; }

        public int Height { get; set; }

        public long OutputBytes { get; set; }

        public void Fail(JobFailedException failure)
        {
            Failure ??= failure;
            Content = null;
            Result = null;
        }

        public JobOutcome ToOutcome(ModelIdentity model, string workerId)
        {
            if (Failure is not null) return JobOutcome.Failed(Job, Failure);
            if (!Done) return JobOutcome.Failed(Job, new JobFailedException(StylizationErrorCode.ModelError, true, "job ended without an outcome"));

            return JobOutcome.Success(Job, new ImageStylized
            {
                JobId = Job.JobId,
                BatchId = Job.BatchId,
                OutputRef = StorageLocation.WithoutSas(Job.OutputRef),
                Width = Width,
                Height = Height,
                OutputBytes = OutputBytes,
                Timings = new StageTimings
                {
                    FetchMs = FetchMs,
                    DecodeMs = DecodeMs,
                    StyleEncodeMs = StyleEncodeMs,
                    InferenceMs = InferenceMs,
                    EncodeMs = EncodeMs,
                    WriteMs = WriteMs,
                    TotalMs = Stopwatch.GetElapsedTime(_started).TotalMilliseconds,
                },
                ModelId = model.Id,
                ModelVersion = model.Version,
                WorkerId = workerId,
                Reused = Reused,
                CorrelationId = Job.CorrelationId,
                CompletedAt = DateTimeOffset.UtcNow,
                Quality = Reused ? null : Quality,
            });
        }
    }
}
