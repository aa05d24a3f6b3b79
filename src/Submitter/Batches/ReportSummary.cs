using System.Security.Cryptography;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Storage;

namespace MambaSt.Batch.Submitter.Batches;

/// <summary>
/// What the HTML report shows, folded from the records without holding them: outcomes first
/// (<see cref="AddOutcome"/>, the winning one per job), then the job records (<see cref="AddJob"/>), which fill in
/// the few jobs the page names. Memory is fixed per batch except the per-second completion counts (one entry per
/// second of wall time), the per-worker and per-model counts, and the bounded lists (sample, failures per code,
/// flagged outputs, pending jobs to check): never one entry per job.
/// </summary>
public sealed class ReportSummary(HtmlReportOptions options)
{
    public static readonly string[] StageNames = ["fetch", "decode", "style", "infer", "encode", "write"];

    private readonly SortedDictionary<long, int> _completedPerSecond = [];
    private readonly PriorityQueue<Guid, ulong> _sample = new(Comparer<ulong>.Create((a, b) => b.CompareTo(a)));
    private readonly HashSet<Guid> _sampleIds = [];
    private readonly Dictionary<Guid, OutcomeRecord> _sampledOutcomes = [];
    private readonly Dictionary<Guid, SampledJob> _sampledJobs = [];
    private readonly Dictionary<Guid, List<Action<JobRecord>>> _waitingForJob = [];

    public long Jobs { get; private set; }

    public long Done { get; private set; }

    public long Reused { get; private set; }

    public long Failed { get; private set; }

    public long Pending { get; private set; }

    public long Flagged { get; private set; }

    public DateTimeOffset? FirstCompletion { get; private set; }

    public DateTimeOffset? LastCompletion { get; private set; }

    public LogHistogram Latency { get; } = new();

    public LogHistogram[] Stages { get; } = StageNames.Select(_ => new LogHistogram()).ToArray();

    public SortedDictionary<string, long> Workers { get; } = new(StringComparer.Ordinal);

    public SortedDictionary<string, long> Models { get; } = new(StringComparer.Ordinal);

    public SortedDictionary<string, FailureGroup> FailureGroups { get; } = new(StringComparer.Ordinal);

    public List<FlaggedOutput> FlaggedOutputs { get; } = [];

    /// <summary>Jobs with no outcome record, up to the bound the caller checks for an existing output.</summary>
    public List<JobRecord> PendingToCheck { get; } = [];

    public IReadOnlyDictionary<long, int> CompletedPerSecond => _completedPerSecond;

    public long Quarantined => FailureGroups.TryGetValue("Quarantined", out var g) ? g.Count : 0;

    public double WallSeconds(DateTimeOffset? start) =>
        LastCompletion is { } end && (start ?? FirstCompletion) is { } begin && end > begin ? (end - begin).TotalSeconds : 0;

    /// <summary>One job and its final outcome at once (a batch held in memory, tests).</summary>
    public void Add(JobRecord job, OutcomeRecord? outcome)
    {
        if (outcome?.Status is JobStatus.Done or JobStatus.Failed)
        {
            OfferSample(job.JobId);
            AddOutcome(outcome);
        }

        AddJob(job, outcome?.Status ?? JobStatus.Pending);
    }

    /// <summary>Keeps the finished jobs with the smallest hash of their id: the same sample on every run, in one pass. Call before <see cref="AddOutcome"/>.</summary>
    public void OfferSample(Guid jobId)
    {
        if (options.Sample <= 0 || _sampleIds.Contains(jobId)) return;
        var key = BitConverter.ToUInt64(SHA256.HashData(jobId.ToByteArray()), 0);
        if (_sample.Count < options.Sample)
        {
            _sample.Enqueue(jobId, key);
            _sampleIds.Add(jobId);
        }
        else if (_sample.TryPeek(out _, out var largest) && key < largest)
        {
            var evicted = _sample.DequeueEnqueue(jobId, key);
            _sampleIds.Remove(evicted);
            _sampledOutcomes.Remove(evicted);
            _sampledJobs.Remove(evicted);
            _sampleIds.Add(jobId);
        }
    }

    /// <summary>The final outcome of one job (done or failed).</summary>
    public void AddOutcome(OutcomeRecord o)
    {
        if (o.Status == JobStatus.Done) AddDone(o);
        else if (o.Status == JobStatus.Failed) AddFailed(o);
        if (_sampleIds.Contains(o.JobId)) _sampledOutcomes[o.JobId] = o;
    }

    /// <summary>A job of the batch, with the status its outcome gave it (<see cref="JobStatus.Pending"/> when none).</summary>
    public void AddJob(JobRecord job, JobStatus status)
    {
        Jobs++;
        if (status == JobStatus.Pending)
        {
            Pending++;
            if (PendingToCheck.Count < options.PendingOutputChecks) PendingToCheck.Add(job);
        }

        if (_waitingForJob.Remove(job.JobId, out var fillers))
        {
            foreach (var fill in fillers) fill(job);
        }

        if (_sampledOutcomes.Remove(job.JobId, out var outcome)) _sampledJobs[job.JobId] = new SampledJob(job, outcome);
    }

    /// <summary>A pending job whose output exists after all (its event was never recorded): counted as done, reused.</summary>
    public void PendingFoundDone(JobRecord job)
    {
        Pending--;
        Done++;
        Reused++;
        OfferSample(job.JobId);
        if (_sampleIds.Contains(job.JobId)) _sampledJobs[job.JobId] = new SampledJob(job, new OutcomeRecord { JobId = job.JobId, Status = JobStatus.Done, OutputRef = job.OutputRef, Reused = true });
    }

    public IReadOnlyList<SampledJob> Sample() => _sampledJobs.Values.Where(s => _sampleIds.Contains(s.Job.JobId)).OrderBy(s => s.Job.RelativePath, StringComparer.Ordinal).ToList();

    private void AddDone(OutcomeRecord o)
    {
        Done++;
        if (o.Reused) Reused++;
        Count(Workers, o.WorkerId ?? "(unknown)");
        if (o.ModelId is not null) Count(Models, $"{o.ModelId} {o.ModelVersion}".Trim());
        if (o.At != default)
        {
            if (FirstCompletion is null || o.At < FirstCompletion) FirstCompletion = o.At;
            if (LastCompletion is null || o.At > LastCompletion) LastCompletion = o.At;
            var second = o.At.ToUnixTimeSeconds();
            _completedPerSecond[second] = _completedPerSecond.GetValueOrDefault(second) + 1;
        }

        if (o.Timings is { } t && !o.Reused)
        {
            Latency.Add(t.TotalMs);
            double[] stages = [t.FetchMs, t.DecodeMs, t.StyleEncodeMs, t.InferenceMs, t.EncodeMs, t.WriteMs];
            for (var i = 0; i < stages.Length; i++) Stages[i].Add(stages[i]);
        }

        if (o.Quality is { } q && QualityProblem(q) is { } problem) Flag(o.JobId, o.OutputRef, problem);
    }

    private void AddFailed(OutcomeRecord o)
    {
        Failed++;
        var code = o.ErrorCode?.ToString() ?? "Unknown";
        if (!FailureGroups.TryGetValue(code, out var group))
        {
            group = new FailureGroup(code, StorageLocation.RedactSecrets(o.Message) ?? "");
            FailureGroups[code] = group;
        }

        group.Count++;
        if (group.Examples.Count < options.FailuresPerGroup)
        {
            var example = new FailureExample(o.JobId, StorageLocation.RedactSecrets(o.Message) ?? "");
            group.Examples.Add(example);
            WhenJobSeen(o.JobId, job =>
            {
                example.RelativePath = job.RelativePath;
                example.ContentRef = StorageLocation.RedactSecrets(job.ContentRef);
            });
        }
    }

    /// <summary>Why an output looks broken, or null: nearly uniform, or the content returned unchanged.</summary>
    public string? QualityProblem(OutputQuality q) =>
        q.LumaStdDev < options.UniformLumaStdDev ? $"nearly uniform (luma std dev {q.LumaStdDev:0.##})"
        : q.ContentDifference < options.UnchangedDifference ? $"same as the content (mean difference {q.ContentDifference:0.##})"
        : null;

    /// <summary>Lists a broken-looking output; <paramref name="job"/> fills in its input and reference when known already.</summary>
    public void Flag(Guid jobId, string? outputRef, string problem, JobRecord? job = null)
    {
        if (FlaggedOutputs.Any(f => f.JobId == jobId)) return;
        Flagged++;
        if (FlaggedOutputs.Count >= options.FlaggedListed) return;
        var flagged = new FlaggedOutput(jobId, problem) { OutputRef = StorageLocation.RedactSecrets(outputRef) };
        FlaggedOutputs.Add(flagged);
        void Fill(JobRecord j)
        {
            flagged.RelativePath = j.RelativePath;
            flagged.OutputRef ??= StorageLocation.RedactSecrets(j.OutputRef);
        }

        if (job is not null) Fill(job);
        else WhenJobSeen(jobId, Fill);
    }

    private void WhenJobSeen(Guid jobId, Action<JobRecord> fill)
    {
        if (!_waitingForJob.TryGetValue(jobId, out var list)) _waitingForJob[jobId] = list = [];
        list.Add(fill);
    }

    private static void Count(SortedDictionary<string, long> counts, string key) => counts[key] = counts.GetValueOrDefault(key) + 1;
}

public sealed record SampledJob(JobRecord Job, OutcomeRecord Outcome);

public sealed class FailureExample(Guid jobId, string message)
{
    public Guid JobId { get; } = jobId;

    public string Message { get; } = message;

    public string? RelativePath { get; set; }

    public string? ContentRef { get; set; }
}

public sealed class FlaggedOutput(Guid jobId, string problem)
{
    public Guid JobId { get; } = jobId;

    public string Problem { get; } = problem;

    public string? RelativePath { get; set; }

    public string? OutputRef { get; set; }
}

public sealed class FailureGroup(string code, string firstMessage)
{
    public string Code { get; } = code;

    public string FirstMessage { get; } = firstMessage;

    public long Count { get; set; }

    public List<FailureExample> Examples { get; } = [];
}

/// <summary>
/// Counts in logarithmic buckets (<see cref="PerDecade"/> per decade, 0.01 ms to 10^7 ms): quantiles within about
/// 6 % in fixed memory, whatever the number of values.
/// </summary>
public sealed class LogHistogram
{
    public const int PerDecade = 40;
    private const double Min = 0.01;
    private const int Decades = 9;
    private readonly long[] _counts = new long[(PerDecade * Decades) + 1];

    public long Count { get; private set; }

    public void Add(double value)
    {
        if (double.IsNaN(value) || value < 0) return;
        _counts[Bucket(value)]++;
        Count++;
    }

    /// <summary>The geometric middle of the bucket that holds the q-quantile; 0 when empty.</summary>
    public double Quantile(double q)
    {
        if (Count == 0) return 0;
        var rank = (long)Math.Ceiling(q * Count);
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= Math.Max(1, rank)) return Middle(i);
        }

        return Middle(_counts.Length - 1);
    }

    /// <summary>Counts regrouped into about <paramref name="bars"/> bars between the smallest and largest value seen: (lower bound, upper bound, count).</summary>
    public IReadOnlyList<(double Low, double High, long Count)> Bars(int bars)
    {
        var first = Array.FindIndex(_counts, c => c > 0);
        var last = Array.FindLastIndex(_counts, c => c > 0);
        if (first < 0) return [];
        var width = Math.Max(1, (int)Math.Ceiling((last - first + 1) / (double)bars));
        var result = new List<(double, double, long)>();
        for (var start = first; start <= last; start += width)
        {
            long sum = 0;
            for (var i = start; i < Math.Min(start + width, _counts.Length); i++) sum += _counts[i];
            result.Add((Lower(start), Lower(start + width), sum));
        }

        return result;
    }

    private static int Bucket(double value) => value <= Min ? 0 : Math.Min((int)(Math.Log10(value / Min) * PerDecade), (PerDecade * Decades) - 1) + 1;

    private static double Lower(int bucket) => bucket == 0 ? 0 : Min * Math.Pow(10, (bucket - 1) / (double)PerDecade);

    private static double Middle(int bucket) => bucket == 0 ? Min : Min * Math.Pow(10, (bucket - 0.5) / PerDecade);
}

public sealed record HtmlReportOptions
{
    /// <summary>Jobs shown as thumbnails (all of them when the batch is smaller).</summary>
    public int Sample { get; init; } = 48;

    public int ThumbnailSide { get; init; } = 256;

    public int FailuresPerGroup { get; init; } = 10;

    public int FlaggedListed { get; init; } = 200;

    /// <summary>Pending jobs whose output is looked up (a job whose event was never recorded but whose output exists is done).</summary>
    public int PendingOutputChecks { get; init; } = 10_000;

    public double UniformLumaStdDev { get; init; } = 4;

    public double UnchangedDifference { get; init; } = 1;

    /// <summary>Largest input or output read for a thumbnail.</summary>
    public long MaxThumbnailSourceBytes { get; init; } = 64L << 20;
}
