using System.Diagnostics;
using System.Diagnostics.Metrics;
using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Processing;

/// <summary>OpenTelemetry-ready instruments of the pipeline (meter and activity source "MambaSt.Batch").
/// Thread-safe; one per process.</summary>
public sealed class StylizationMetrics : IDisposable
{
    public const string Name = "MambaSt.Batch";

    public static readonly ActivitySource ActivitySource = new(Name);

    private readonly Meter _meter;
    private readonly Counter<long> _jobsDone;
    private readonly Counter<long> _jobsFailed;
    private readonly Counter<long> _jobsReused;
    private readonly Counter<long> _styleCacheHits;
    private readonly Counter<long> _styleCacheMisses;
    private readonly Histogram<double> _stageMs;
    private readonly Histogram<int> _batchSize;
    private readonly Histogram<int> _groupSize;

    public StylizationMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(Name) ?? new Meter(Name);
        _jobsDone = _meter.CreateCounter<long>("mambast.jobs.completed", "{job}", "Jobs whose output was written");
        _jobsReused = _meter.CreateCounter<long>("mambast.jobs.reused", "{job}", "Jobs whose output already existed");
        _jobsFailed = _meter.CreateCounter<long>("mambast.jobs.failed", "{job}", "Jobs that ended without output, by error code");
        _styleCacheHits = _meter.CreateCounter<long>("mambast.style_cache.hits", "{lookup}");
        _styleCacheMisses = _meter.CreateCounter<long>("mambast.style_cache.misses", "{lookup}");
        _stageMs = _meter.CreateHistogram<double>("mambast.stage.duration", "ms", "Time per pipeline stage per job");
        _batchSize = _meter.CreateHistogram<int>("mambast.batch.size", "{job}", "Messages per consumed batch");
        _groupSize = _meter.CreateHistogram<int>("mambast.inference.batch_size", "{image}", "Images per ONNX Runtime run");
    }

    public long Completed => Interlocked.Read(ref _completed);

    public long Failed => Interlocked.Read(ref _failed);

    public long StyleCacheHits => Interlocked.Read(ref _hits);

    public long StyleCacheMisses => Interlocked.Read(ref _misses);

    private long _completed;
    private long _failed;
    private long _hits;
    private long _misses;

    public void JobCompleted(bool reused)
    {
        Interlocked.Increment(ref _completed);
        (reused ? _jobsReused : _jobsDone).Add(1);
    }

    public void JobFailed(StylizationErrorCode code, bool transient)
    {
        Interlocked.Increment(ref _failed);
        _jobsFailed.Add(1, new KeyValuePair<string, object?>("error.code", code.ToString()), new KeyValuePair<string, object?>("transient", transient));
    }

    public void StyleCache(bool hit)
    {
        if (hit)
        {
            Interlocked.Increment(ref _hits);
            _styleCacheHits.Add(1);
        }
        else
        {
            Interlocked.Increment(ref _misses);
            _styleCacheMisses.Add(1);
        }
    }

    public void Stage(string stage, double ms) => _stageMs.Record(ms, new KeyValuePair<string, object?>("stage", stage));

    public void Batch(int size) => _batchSize.Record(size);

    public void InferenceGroup(int size) => _groupSize.Record(size);

    public void Dispose() => _meter.Dispose();
}
