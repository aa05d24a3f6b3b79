using System.Collections.Concurrent;
using MambaSt.Batch.Contracts;
using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Processing.Tests;

/// <summary>The consumer's logic around the pipeline, on MassTransit's in-memory test harness (the real
/// broker path is in Worker.Tests).</summary>
public class StylizeImageConsumerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly FakeStorage _storage = new();
    private readonly FakeModel _model = new();
    private readonly LogCapture _logs = new();

    private static StylizeImage Job(Guid id, string output, string batch = "batch-1") => new()
    {
        JobId = id,
        BatchId = batch,
        ContentRef = "in/1",
        StyleRef = "styles/a",
        OutputRef = output,
        Options = new StylizeOptions { Format = OutputFormat.Png },
    };

    private Task<ITestHarness> Run(IJobRedelivery redelivery, params StylizeImage[] jobs) => Run(redelivery, batchRetries: 0, jobs);

    private Task<ITestHarness> Run(IJobRedelivery redelivery, int batchRetries, params StylizeImage[] jobs) =>
        Run(redelivery, batchRetries, new WorkerOptions { ImmediateRetries = 0, WorkerId = "test-worker" }, withMessageIds: true, jobs);

    private async Task<ITestHarness> Run(IJobRedelivery redelivery, int batchRetries, WorkerOptions workerOptions, bool withMessageIds, params StylizeImage[] jobs)
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8, 100);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        var options = Options.Create(workerOptions);
        var provider = new ServiceCollection()
            .AddSingleton<ILoggerFactory>(new LoggerFactory([_logs]))
            .AddSingleton(typeof(ILogger<>), typeof(Logger<>))
            .AddSingleton(options)
            .AddSingleton(new StylizationMetrics())
            .AddSingleton<HandledJobs>()
            .AddSingleton(sp => new StylizationPipeline(_storage, new FakeCodec(), _model, sp.GetRequiredService<StylizationMetrics>(),
                options, sp.GetRequiredService<ILogger<StylizationPipeline>>()))
            .AddSingleton(redelivery)
            .AddMassTransitTestHarness(x => x.AddConsumer<StylizeImageConsumer>(c =>
            {
                c.Options<BatchOptions>(b => b.SetMessageLimit(16).SetTimeLimit(TimeSpan.FromMilliseconds(500)));
                if (batchRetries > 0) c.UseMessageRetry(r => r.Immediate(batchRetries));
            }))
            .BuildServiceProvider(true);
        var harness = provider.GetRequiredService<ITestHarness>();
        await harness.Start();
        var ct = TestContext.Current.CancellationToken;
        if (withMessageIds) await harness.Bus.PublishBatch(jobs, ct);
        else await harness.Bus.PublishBatch(jobs, Pipe.Execute<PublishContext<StylizeImage>>(p => p.MessageId = null), ct);
        // The harness tracks consumed messages by message id; without one, wait for the bus to go quiet.
        if (withMessageIds) (await harness.Consumed.Any<StylizeImage>(ct)).ShouldBeTrue();
        else await Task.Delay(1000, ct);
        await harness.InactivityTask;
        return harness;
    }

    [Fact]
    public async Task The_same_job_id_for_two_outputs_writes_both_and_answers_each_with_its_own_output()
    {
        var id = Guid.NewGuid();

        var harness = await Run(new NoRedelivery(), Job(id, "out/a"), Job(id, "out/b"));

        _storage.Outputs.Keys.Order().ShouldBe(["out/a", "out/b"]);
        var events = harness.Published.Select<ImageStylized>(Ct).Select(m => m.Context.Message).ToArray();
        events.Select(e => e.OutputRef).Order().ShouldBe(["out/a", "out/b"]);
        events.ShouldAllBe(e => e.JobId == id);
    }

    [Fact]
    public async Task Copies_of_one_job_in_one_batch_are_run_and_answered_once()
    {
        var job = Job(Guid.NewGuid(), "out/a");

        var harness = await Run(new NoRedelivery(), job, job, job);

        _model.RunSizes.Sum().ShouldBe(1);
        harness.Published.Select<ImageStylized>(Ct).Count().ShouldBe(1);
    }

    [Fact]
    public async Task Every_event_carries_its_batch_id_as_a_transport_header()
    {
        var ok = Job(Guid.NewGuid(), "out/a", "batch-ok");
        var bad = Job(Guid.NewGuid(), "out/b", "batch-bad") with { StyleRef = "styles/missing" };

        var harness = await Run(new NoRedelivery(), ok, bad);

        var done = harness.Published.Select<ImageStylized>(Ct).Single().Context;
        done.Headers.Get<string>(StylizeImageConsumer.BatchIdHeader).ShouldBe("batch-ok");
        var failed = harness.Published.Select<ImageStylizationFailed>(Ct).Single().Context;
        failed.Headers.Get<string>(StylizeImageConsumer.BatchIdHeader).ShouldBe("batch-bad");
        failed.Message.ErrorCode.ShouldBe(StylizationErrorCode.NotFound);
    }

    [Fact]
    public async Task A_sas_signature_in_an_output_reference_is_left_out_of_the_done_event_and_is_neither_logged_nor_put_in_a_failure_event()
    {
        const string sas = "?sv=2021-08-06&sr=c&sig=SECRET%2Bvalue";
        var ok = Job(Guid.NewGuid(), "https://account.blob.core.windows.net/c/out/a.png" + sas);
        var taken = Job(Guid.NewGuid(), "https://account.blob.core.windows.net/c/out/b.png" + sas);
        _storage.Outputs[taken.OutputRef] = ([1, 2, 3], new Dictionary<string, string>());

        var harness = await Run(new NoRedelivery(), ok, taken);

        harness.Published.Select<ImageStylized>(Ct).Single().Context.Message.OutputRef.ShouldBe("https://account.blob.core.windows.net/c/out/a.png");
        var failed = harness.Published.Select<ImageStylizationFailed>(Ct).Single().Context.Message;
        failed.Message.ShouldContain("refusing to overwrite");
        _logs.Lines.ShouldContain(l => l.Contains("done:"));
        foreach (var text in _logs.Lines.Append(failed.Message)) text.ShouldNotContain("SECRET");
    }

    [Fact]
    public async Task A_redelivery_that_cannot_be_published_faults_the_batch_before_any_success_is_announced()
    {
        _storage.TransientFailuresLeft["in/2"] = 100;
        _storage.Inputs["in/2"] = FakeCodec.Image(16, 16);
        var ok = Job(Guid.NewGuid(), "out/a");
        var flaky = Job(Guid.NewGuid(), "out/b") with { ContentRef = "in/2" };

        var harness = await Run(new BrokenRedelivery(), ok, flaky);

        (await harness.Published.Any<Fault<StylizeImage>>(TestContext.Current.CancellationToken)).ShouldBeTrue();
        harness.Published.Select<ImageStylized>(Ct).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_batch_retried_after_a_failed_redelivery_answers_each_earlier_failure_once()
    {
        _storage.Inputs["in/2"] = FakeCodec.Image(16, 16);
        _storage.Inputs["in/3"] = FakeCodec.Image(16, 16);
        _storage.TransientFailuresLeft["in/2"] = 100;
        _storage.TransientFailuresLeft["in/3"] = 100;
        var first = Job(Guid.NewGuid(), "out/a") with { ContentRef = "in/2" };
        var permanent = Job(Guid.NewGuid(), "out/b") with { StyleRef = "styles/missing" };
        var last = Job(Guid.NewGuid(), "out/c") with { ContentRef = "in/3" };
        var redelivery = new FailsOnceFor(last.JobId);

        var harness = await Run(redelivery, batchRetries: 2, first, permanent, last);

        redelivery.Sent.Order().ShouldBe(new[] { first.JobId, last.JobId }.Order());
        redelivery.TriesOfRefused.ShouldBe(2);
        harness.Published.Select<ImageStylizationFailed>(Ct).Select(m => m.Context.Message.JobId).ShouldBe([permanent.JobId]);
        (await harness.Published.Any<Fault<Batch<StylizeImage>>>(Ct)).ShouldBeFalse();
    }

    [Fact]
    public async Task A_batch_fault_past_the_last_retry_answers_every_job_with_an_event_instead_of_leaving_it_pending()
    {
        _storage.TransientFailuresLeft["in/2"] = 100;
        _storage.Inputs["in/2"] = FakeCodec.Image(16, 16);
        var ok = Job(Guid.NewGuid(), "out/a");
        var flaky = Job(Guid.NewGuid(), "out/b") with { ContentRef = "in/2" };
        var options = new WorkerOptions { ImmediateRetries = 0, WorkerId = "test-worker", BatchRetryDelaysMs = [0, 0] };

        var harness = await Run(new BrokenRedelivery(), batchRetries: 2, options, withMessageIds: true, ok, flaky);

        harness.Published.Select<ImageStylized>(Ct).Select(m => m.Context.Message.JobId).ShouldBe([ok.JobId]);
        var failed = harness.Published.Select<ImageStylizationFailed>(Ct).Select(m => m.Context.Message).ShouldHaveSingleItem();
        failed.JobId.ShouldBe(flaky.JobId);
        failed.ErrorCode.ShouldBe(StylizationErrorCode.StorageUnavailable);
        failed.Transient.ShouldBeTrue();
        failed.Message.ShouldContain("3 tries");
        (await harness.Published.Any<Fault<StylizeImage>>(Ct)).ShouldBeFalse();
    }

    [Fact]
    public async Task Jobs_published_without_a_message_id_are_answered_once_when_their_batch_is_retried()
    {
        _storage.Inputs["in/2"] = FakeCodec.Image(16, 16);
        _storage.Inputs["in/3"] = FakeCodec.Image(16, 16);
        _storage.TransientFailuresLeft["in/2"] = 100;
        _storage.TransientFailuresLeft["in/3"] = 100;
        var first = Job(Guid.NewGuid(), "out/a") with { ContentRef = "in/2" };
        var permanent = Job(Guid.NewGuid(), "out/b") with { StyleRef = "styles/missing" };
        var last = Job(Guid.NewGuid(), "out/c") with { ContentRef = "in/3" };
        var redelivery = new FailsOnceFor(last.JobId);

        var harness = await Run(redelivery, batchRetries: 2, new WorkerOptions { ImmediateRetries = 0, WorkerId = "test-worker" }, withMessageIds: false,
            first, permanent, last);

        redelivery.MessageIds.ShouldAllBe(id => id == null);
        redelivery.Sent.Order().ShouldBe(new[] { first.JobId, last.JobId }.Order());
        harness.Published.Select<ImageStylizationFailed>(Ct).Select(m => m.Context.Message.JobId).ShouldBe([permanent.JobId]);
    }

    [Fact]
    public async Task A_decode_timeout_on_the_second_delivery_is_permanent_and_not_redelivered_again()
    {
        _storage.Inputs["in/slow"] = [16, 16, 1, 0xEE];
        var job = Job(Guid.NewGuid(), "out/a") with { ContentRef = "in/slow" };
        var redelivery = new RecordingRedelivery(1);

        var harness = await Run(redelivery, job);

        redelivery.Redelivered.ShouldBe(0);
        var failed = harness.Published.Select<ImageStylizationFailed>(Ct).Select(m => m.Context.Message).ShouldHaveSingleItem();
        failed.ErrorCode.ShouldBe(StylizationErrorCode.Timeout);
        failed.Transient.ShouldBeFalse();
        failed.AttemptCount.ShouldBe(2);
    }

    [Fact]
    public void A_decode_timeout_on_the_first_delivery_stays_transient_and_other_timeouts_are_untouched()
    {
        var decode = new JobFailedException(StylizationErrorCode.Timeout, true, "slow",
            new MambaSt.Batch.Imaging.ImageException(MambaSt.Batch.Imaging.ImageErrorKind.Timeout, "decode timed out"));
        var storage = new JobFailedException(StylizationErrorCode.Timeout, true, "slow blob");

        StylizeImageConsumer.SettleDecodeTimeout(decode, attempts: 1).Transient.ShouldBeTrue();
        StylizeImageConsumer.SettleDecodeTimeout(decode, attempts: 2).Transient.ShouldBeFalse();
        StylizeImageConsumer.SettleDecodeTimeout(storage, attempts: 3).Transient.ShouldBeTrue();
    }

    private sealed class RecordingRedelivery(int attempt) : IJobRedelivery
    {
        public int Redelivered;

        public int AttemptOf(ConsumeContext<StylizeImage> context) => attempt;

        public Task<bool> TryRedeliverAsync(ConsumeContext<StylizeImage> context, JobFailedException failure, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Redelivered);
            return Task.FromResult(true);
        }

        public Task MoveToErrorQueueAsync(ConsumeContext<StylizeImage> context, JobFailedException failure, CancellationToken cancellationToken) =>
            Task.CompletedTask;
    }

    /// <summary>Redelivers every job, but the first try for <paramref name="refused"/> fails like a dropped broker connection.</summary>
    private sealed class FailsOnceFor(Guid refused) : IJobRedelivery
    {
        public readonly ConcurrentQueue<Guid> Sent = new();

        public readonly ConcurrentQueue<Guid?> MessageIds = new();

        public int TriesOfRefused;

        public int AttemptOf(ConsumeContext<StylizeImage> context) => 0;

        public Task<bool> TryRedeliverAsync(ConsumeContext<StylizeImage> context, JobFailedException failure, CancellationToken cancellationToken)
        {
            if (context.Message.JobId == refused && Interlocked.Increment(ref TriesOfRefused) == 1)
            {
                throw new InvalidOperationException("broker connection lost");
            }

            Sent.Enqueue(context.Message.JobId);
            MessageIds.Enqueue(context.MessageId);
            return Task.FromResult(true);
        }

        public Task MoveToErrorQueueAsync(ConsumeContext<StylizeImage> context, JobFailedException failure, CancellationToken cancellationToken) =>
            Task.CompletedTask;
    }

    private sealed class BrokenRedelivery : IJobRedelivery
    {
        public int AttemptOf(ConsumeContext<StylizeImage> context) => 0;

        public Task<bool> TryRedeliverAsync(ConsumeContext<StylizeImage> context, JobFailedException failure, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("broker connection lost");

        public Task MoveToErrorQueueAsync(ConsumeContext<StylizeImage> context, JobFailedException failure, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("broker connection lost");
    }
}
