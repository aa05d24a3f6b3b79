using MambaSt.Batch.Contracts;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Processing.Tests;

/// <summary>Readiness follows the model's runs; the consumer takes no batch while the model keeps failing.</summary>
public class ModelHealthTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly FakeStorage _storage = new();
    private readonly FakeModel _model = new();

    private static StylizeImage Job(int i) => new()
    {
        JobId = Guid.NewGuid(),
        BatchId = "batch-1",
        ContentRef = "in/1",
        StyleRef = "styles/a",
        OutputRef = $"out/{i}",
        Options = new StylizeOptions { Format = OutputFormat.Png },
    };

    [Fact]
    public async Task Consecutive_model_failures_make_the_worker_unready_and_hold_the_next_batch_until_a_run_succeeds()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8, 100);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        var options = Options.Create(new WorkerOptions { UnreadyAfterModelFailures = 3, WorkerId = "test-worker" });
        var health = new ModelHealth(options);
        var pipeline = new StylizationPipeline(_storage, new FakeCodec(), _model, new StylizationMetrics(), options,
            new Logger<StylizationPipeline>(new LoggerFactory()), health);
        _model.ThrowOnRun = new InvalidOperationException("CUDA error: an illegal memory access was encountered");

        for (var i = 0; i < 2; i++)
        {
            (await pipeline.RunAsync([Job(i)], Ct)).Single().Failure!.Code.ShouldBe(StylizationErrorCode.ModelError);
            health.Ready.ShouldBeTrue($"after {i + 1} failure(s)");
        }

        (await pipeline.RunAsync([Job(2)], Ct)).Single().Failure.ShouldNotBeNull();
        health.Ready.ShouldBeFalse();
        var waiting = health.WaitReadyAsync(Ct);
        await Task.Delay(200, Ct);
        waiting.IsCompleted.ShouldBeFalse("no batch is taken while the model fails");

        _model.ThrowOnRun = null;
        (await pipeline.RunAsync([Job(3)], Ct)).Single().Completed.ShouldNotBeNull();
        await waiting.WaitAsync(TimeSpan.FromSeconds(5), Ct);
        health.Ready.ShouldBeTrue();
    }

    [Fact]
    public async Task A_bad_input_does_not_count_as_a_model_failure()
    {
        var options = Options.Create(new WorkerOptions { UnreadyAfterModelFailures = 1, WorkerId = "test-worker" });
        var health = new ModelHealth(options);
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8, 100);
        _storage.Inputs["in/1"] = [16, 16, 1, 0xFF];
        var pipeline = new StylizationPipeline(_storage, new FakeCodec(), _model, new StylizationMetrics(), options,
            new Logger<StylizationPipeline>(new LoggerFactory()), health);

        (await pipeline.RunAsync([Job(0)], Ct)).Single().Failure.ShouldNotBeNull();

        health.Ready.ShouldBeTrue();
    }

    [Fact]
    public async Task The_style_is_fetched_once_for_many_batches_and_the_cache_stays_within_its_byte_bound()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8, 100);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        var options = Options.Create(new WorkerOptions { WorkerId = "test-worker", StyleCacheBytes = 6 });
        var cache = new StyleBytesCache(options);
        var pipeline = new StylizationPipeline(_storage, new FakeCodec(), _model, new StylizationMetrics(), options,
            new Logger<StylizationPipeline>(new LoggerFactory()), styles: cache);

        for (var i = 0; i < 3; i++) (await pipeline.RunAsync([Job(i)], Ct)).Single().Completed.ShouldNotBeNull();

        _storage.Reads.ShouldBe(4, "three contents and one style (was three styles)");
        cache.Add("styles/b", new byte[4]);
        cache.SizeBytes.ShouldBeLessThanOrEqualTo(6);
        cache.TryGet("styles/a", out _).ShouldBeFalse("the least recently used style left to stay within 6 bytes");
    }

    [Fact]
    public void A_batch_held_past_the_wedge_deadline_makes_the_process_not_live_until_released()
    {
        var health = new ModelHealth(Options.Create(new WorkerOptions { WedgedAfterSeconds = 1 }));
        health.Wedged.ShouldBeFalse();

        var held = health.BatchInHand();
        Thread.Sleep(1100);
        health.Wedged.ShouldBeTrue();

        held.Dispose();
        health.Wedged.ShouldBeFalse();
    }
}
