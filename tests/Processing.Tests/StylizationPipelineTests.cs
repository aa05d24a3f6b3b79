using MambaSt.Batch.Contracts;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Processing.Tests;

public class StylizationPipelineTests
{
    private readonly FakeStorage _storage = new();
    private readonly FakeModel _model = new();
    private readonly StylizationMetrics _metrics = new();

    private readonly LogCapture _logs = new();

    private StylizationPipeline Pipeline(Action<WorkerOptions>? configure = null)
    {
        var options = new WorkerOptions { ImmediateRetries = 2, ImmediateRetryDelayMs = 1, WorkerId = "test-worker" };
        configure?.Invoke(options);
        return new StylizationPipeline(_storage, new FakeCodec(), _model, _metrics, Options.Create(options), new Logger<StylizationPipeline>(new LoggerFactory([_logs])));
    }

    private static StylizeImage Job(string name, string style = "styles/a", OutputFormat format = OutputFormat.Png) => new()
    {
        JobId = Guid.NewGuid(),
        BatchId = "batch-1",
        ContentRef = $"in/{name}",
        StyleRef = style,
        OutputRef = $"out/{name}",
        Options = new StylizeOptions { Format = format, Seed = 3 },
    };

    [Fact]
    public async Task A_corrupt_image_fails_alone_and_its_batch_mates_complete()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8, 100);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        _storage.Inputs["in/2"] = [16, 16, 1, 0xFF];
        _storage.Inputs["in/3"] = FakeCodec.Image(16, 16);
        var jobs = new[] { Job("1"), Job("2"), Job("3") };

        var outcomes = await Pipeline().RunAsync(jobs, TestContext.Current.CancellationToken);

        outcomes.Count.ShouldBe(3);
        outcomes[0].Completed.ShouldNotBeNull();
        outcomes[2].Completed.ShouldNotBeNull();
        outcomes[1].Failure!.Code.ShouldBe(StylizationErrorCode.InvalidImage);
        outcomes[1].Failure!.Transient.ShouldBeFalse();
        _storage.Outputs.Keys.Order().ShouldBe(["out/1", "out/3"]);
        _model.RunSizes.ShouldBe([2]);
    }

    [Fact]
    public async Task Jobs_are_grouped_into_one_run_per_style_and_size_and_each_style_is_encoded_once()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["styles/b"] = FakeCodec.Image(8, 8, 9);
        for (var i = 0; i < 6; i++) _storage.Inputs[$"in/{i}"] = FakeCodec.Image(i < 4 ? (byte)16 : (byte)24, 16);
        var jobs = Enumerable.Range(0, 6).Select(i => Job($"{i}", i % 2 == 0 ? "styles/a" : "styles/b")).ToArray();

        var outcomes = await Pipeline().RunAsync(jobs, TestContext.Current.CancellationToken);

        outcomes.ShouldAllBe(o => o.Completed != null);
        _model.StyleEncodes.ShouldBe(2);
        _model.RunSizes.Order().ShouldBe([1, 1, 2, 2]);
        outcomes[4].Completed!.Width.ShouldBe(24);
        outcomes[0].Completed!.Timings.TotalMs.ShouldBeGreaterThan(0);
        outcomes[0].Completed!.WorkerId.ShouldBe("test-worker");
    }

    [Fact]
    public async Task A_job_whose_output_exists_for_the_same_job_and_model_is_not_computed_again()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        var job = Job("1");
        var first = await Pipeline().RunAsync([job], TestContext.Current.CancellationToken);
        var readsAfterFirst = _storage.Reads;

        var again = await Pipeline().RunAsync([job], TestContext.Current.CancellationToken);

        first[0].Completed!.Reused.ShouldBeFalse();
        again[0].Completed!.Reused.ShouldBeTrue();
        again[0].Completed!.Width.ShouldBe(16);
        again[0].Completed!.OutputBytes.ShouldBe(first[0].Completed!.OutputBytes);
        _model.RunSizes.Count.ShouldBe(1);
        _storage.Reads.ShouldBe(readsAfterFirst);
    }

    [Fact]
    public async Task An_output_written_by_another_job_is_never_overwritten()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        await Pipeline().RunAsync([Job("1")], TestContext.Current.CancellationToken);
        var before = _storage.Outputs["out/1"].Data;

        var other = Job("1") with { Options = new StylizeOptions { Seed = 99 } };
        var outcome = (await Pipeline().RunAsync([other], TestContext.Current.CancellationToken))[0];

        outcome.Failure.ShouldNotBeNull();
        outcome.Failure.Transient.ShouldBeFalse();
        outcome.Failure.Message.ShouldContain("refusing to overwrite");
        _storage.Outputs["out/1"].Data.ShouldBe(before);
    }

    [Fact]
    public async Task An_event_announces_a_sas_output_without_its_query()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        var job = Job("1") with { OutputRef = "https://account.blob.core.windows.net/c/out/1.png?sv=2021-08-06&sr=c&sp=rcw&sig=WRITESECRET%3D" };

        var completed = (await Pipeline().RunAsync([job], TestContext.Current.CancellationToken))[0].Completed!;

        completed.OutputRef.ShouldBe("https://account.blob.core.windows.net/c/out/1.png");
        System.Text.Json.JsonSerializer.Serialize(completed).ShouldNotContain("WRITESECRET");
        _storage.Outputs.Keys.ShouldBe([job.OutputRef]);
    }

    [Fact]
    public async Task A_sas_signature_in_an_output_reference_is_neither_logged_nor_put_in_a_failure_message()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        var job = Job("1") with { OutputRef = "https://account.blob.core.windows.net/c/out/1.png?sv=2021-08-06&sr=c&sig=SECRET%2Bvalue" };
        await Pipeline().RunAsync([job], TestContext.Current.CancellationToken);
        var again = (await Pipeline().RunAsync([job], TestContext.Current.CancellationToken))[0];
        var other = (await Pipeline().RunAsync([job with { Options = new StylizeOptions { Seed = 99 } }], TestContext.Current.CancellationToken))[0];

        _storage.Outputs.Keys.ShouldBe([job.OutputRef]);
        again.Completed!.Reused.ShouldBeTrue();
        again.Completed.OutputRef.ShouldBe("https://account.blob.core.windows.net/c/out/1.png");
        other.Failure!.Message.ShouldContain("refusing to overwrite");
        other.Failure.Message.ShouldContain("sig=<redacted>");
        _logs.Lines.ShouldContain(l => l.Contains("already exists for this job"));
        foreach (var text in _logs.Lines.Append(other.Failure.Message)) text.ShouldNotContain("SECRET");
    }

    [Fact]
    public async Task Transient_storage_failures_are_retried_in_process_within_the_budget()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        _storage.Inputs["in/2"] = FakeCodec.Image(16, 16);
        _storage.TransientFailuresLeft["in/1"] = 2;
        _storage.TransientFailuresLeft["in/2"] = 3;

        var outcomes = await Pipeline(o => o.ImmediateRetries = 2).RunAsync([Job("1"), Job("2")], TestContext.Current.CancellationToken);

        outcomes[0].Completed.ShouldNotBeNull();
        outcomes[1].Failure!.Code.ShouldBe(StylizationErrorCode.StorageUnavailable);
        outcomes[1].Failure!.Transient.ShouldBeTrue();
    }

    [Fact]
    public async Task A_missing_style_fails_every_job_that_uses_it_and_no_other()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        _storage.Inputs["in/2"] = FakeCodec.Image(16, 16);

        var outcomes = await Pipeline().RunAsync([Job("1", "styles/missing"), Job("2")], TestContext.Current.CancellationToken);

        outcomes[0].Failure!.Code.ShouldBe(StylizationErrorCode.NotFound);
        outcomes[1].Completed.ShouldNotBeNull();
    }

    [Fact]
    public async Task Shutdown_cancellation_escapes_so_the_messages_return_to_the_queue()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Should.ThrowAsync<OperationCanceledException>(() => Pipeline().RunAsync([Job("1")], cts.Token));
        _storage.Outputs.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_content_read_that_hangs_fails_that_job_alone_after_FetchTimeoutSeconds_and_its_batch_mates_complete()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        _storage.Inputs["in/3"] = FakeCodec.Image(16, 16);
        _storage.Hangs["in/2"] = true;

        // JobTimeoutSeconds is short too: a deadline for the whole batch (before issue 21) failed all three.
        var outcomes = await Pipeline(o => (o.FetchTimeoutSeconds, o.JobTimeoutSeconds) = (1, 5)).RunAsync([Job("1"), Job("2"), Job("3")], TestContext.Current.CancellationToken);

        outcomes[0].Completed.ShouldNotBeNull();
        outcomes[2].Completed.ShouldNotBeNull();
        var failure = outcomes[1].Failure.ShouldNotBeNull();
        failure.Code.ShouldBe(StylizationErrorCode.Timeout);
        failure.Transient.ShouldBeTrue();
        failure.Message.ShouldContain("Worker:FetchTimeoutSeconds=1");
        failure.Message.ShouldContain("fetch (content read)");
        _storage.Outputs.Keys.Order().ShouldBe(["out/1", "out/3"]);
        _model.RunSizes.ShouldBe([2]);
    }

    [Fact]
    public async Task A_decode_that_runs_past_FetchTimeoutSeconds_fails_that_job_alone()
    {
        var codec = new FakeCodec();
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        _storage.Inputs["in/2"] = FakeCodec.Image(16, 16, 0xDD);
        var options = new WorkerOptions { FetchTimeoutSeconds = 1, WorkerId = "test-worker" };
        var pipeline = new StylizationPipeline(_storage, codec, _model, _metrics, Options.Create(options), new Logger<StylizationPipeline>(new LoggerFactory([_logs])));
        try
        {
            var outcomes = await pipeline.RunAsync([Job("1"), Job("2")], TestContext.Current.CancellationToken);

            var failure = outcomes[1].Failure.ShouldNotBeNull();
            failure.Code.ShouldBe(StylizationErrorCode.Timeout);
            failure.Message.ShouldContain("decode within Worker:FetchTimeoutSeconds=1");
            outcomes[0].Completed.ShouldNotBeNull();
            _storage.Outputs.Keys.ShouldBe(["out/1"]);
        }
        finally
        {
            codec.SlowDecodes.Set();
        }
    }

    [Fact]
    public async Task A_model_run_past_its_jobs_deadline_is_cancelled_and_fails_only_the_jobs_of_that_group()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        _storage.Inputs["in/2"] = FakeCodec.Image(16, 16);
        _storage.Inputs["in/3"] = FakeCodec.Image(24, 16);
        _model.HangOnWidth = 24;

        var outcomes = await Pipeline(o => o.JobTimeoutSeconds = 1).RunAsync([Job("1"), Job("2"), Job("3")], TestContext.Current.CancellationToken);

        var failure = outcomes[2].Failure.ShouldNotBeNull();
        failure.Code.ShouldBe(StylizationErrorCode.Timeout);
        failure.Transient.ShouldBeTrue();
        failure.Message.ShouldContain("inference within Worker:JobTimeoutSeconds=1");
        outcomes[0].Completed.ShouldNotBeNull();
        outcomes[1].Completed.ShouldNotBeNull();
        _storage.Outputs.Keys.Order().ShouldBe(["out/1", "out/2"]);
    }

    [Fact]
    public async Task Shutdown_during_a_content_read_escapes_as_cancellation_not_as_a_timeout()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/2"] = FakeCodec.Image(16, 16);
        _storage.Hangs["in/1"] = true;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);

        var run = Pipeline().RunAsync([Job("1"), Job("2")], cts.Token);
        await _storage.HangStarted.Task.WaitAsync(TestContext.Current.CancellationToken);
        await cts.CancelAsync();

        await Should.ThrowAsync<OperationCanceledException>(() => run);
        _storage.Outputs.ShouldBeEmpty();
    }

    [Fact]
    public async Task Shutdown_during_a_model_run_cancels_the_run_and_escapes_as_cancellation()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        _model.HangOnWidth = 16;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);

        var run = Task.Run(() => Pipeline().RunAsync([Job("1")], cts.Token), TestContext.Current.CancellationToken);
        await _model.HangStarted.Task.WaitAsync(TestContext.Current.CancellationToken);
        await cts.CancelAsync();

        await Should.ThrowAsync<OperationCanceledException>(() => run);
        _storage.Outputs.ShouldBeEmpty();
    }

    [Theory]
    [InlineData(0, 300, "Worker:FetchTimeoutSeconds must be 1..3600")]
    [InlineData(60, 0, "Worker:JobTimeoutSeconds must be 1..3600")]
    public void Deadlines_of_zero_are_refused_by_name(int fetch, int job, string named)
    {
        var options = new WorkerOptions { FetchTimeoutSeconds = fetch, JobTimeoutSeconds = job };
        var results = new List<System.ComponentModel.DataAnnotations.ValidationResult>();

        System.ComponentModel.DataAnnotations.Validator.TryValidateObject(options, new(options), results, validateAllProperties: true).ShouldBeFalse();

        results.ShouldContain(r => r.ErrorMessage!.Contains(named));
    }

    [Fact]
    public void Unknown_exceptions_are_transient_model_errors_and_IO_errors_are_storage_errors()
    {
        ErrorClassifier.Classify(new IOException("reset")).Code.ShouldBe(StylizationErrorCode.StorageUnavailable);
        ErrorClassifier.Classify(new TimeoutException()).Code.ShouldBe(StylizationErrorCode.Timeout);
        var unknown = ErrorClassifier.Classify(new InvalidOperationException("boom"));
        unknown.Code.ShouldBe(StylizationErrorCode.ModelError);
        unknown.Transient.ShouldBeTrue();
    }

    public static TheoryData<string, Func<StylizeImage, StylizeImage>> BadMessages => new()
    {
        { "Options.Format 7", j => j with { Options = j.Options with { Format = (OutputFormat)7 } } },
        { "no Options", j => j with { Options = null! } },
        { "Options.Strength is NaN", j => j with { Options = j.Options with { Strength = float.NaN } } },
        { "OutputRef is empty", j => j with { OutputRef = " " } },
        { "StyleRef is empty", j => j with { StyleRef = "" } },
        { "BatchId is empty", j => j with { BatchId = null! } },
        { "must be printable ASCII", j => j with { BatchId = "nuit-é" } },
        { "without leading or trailing spaces", j => j with { BatchId = "night-1 " } },
    };

    [Theory]
    [MemberData(nameof(BadMessages))]
    public async Task A_malformed_message_fails_at_once_as_an_invalid_request_before_any_fetch_or_inference(string named, Func<StylizeImage, StylizeImage> spoil)
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/1"] = FakeCodec.Image(16, 16);
        _storage.Inputs["in/2"] = FakeCodec.Image(16, 16);

        var outcomes = await Pipeline().RunAsync([spoil(Job("1")), Job("2")], TestContext.Current.CancellationToken);

        var failure = outcomes[0].Failure.ShouldNotBeNull();
        failure.Code.ShouldBe(StylizationErrorCode.InvalidRequest);
        failure.Transient.ShouldBeFalse();
        failure.Message.ShouldContain(named);
        outcomes[1].Completed.ShouldNotBeNull();
        _model.RunSizes.ShouldBe([1]);
        _storage.Outputs.Keys.ShouldBe(["out/2"]);
    }

    [Fact]
    public async Task A_storage_clients_own_timeout_fails_that_job_alone_as_a_transient_timeout()
    {
        _storage.Inputs["styles/a"] = FakeCodec.Image(8, 8);
        _storage.Inputs["in/2"] = FakeCodec.Image(16, 16);
        _storage.ReadExceptions["in/1"] = new TaskCanceledException("The operation was cancelled.", new TimeoutException("read timed out"));

        var outcomes = await Pipeline().RunAsync([Job("1"), Job("2")], TestContext.Current.CancellationToken);

        var failure = outcomes[0].Failure.ShouldNotBeNull();
        failure.Code.ShouldBe(StylizationErrorCode.Timeout);
        failure.Transient.ShouldBeTrue();
        failure.Message.ShouldNotContain("JobTimeoutSeconds");
        outcomes[1].Completed.ShouldNotBeNull();
    }

    [Fact]
    public void Storage_errors_keep_their_code_and_transience_and_stray_cancellations_are_timeouts()
    {
        var forbidden = ErrorClassifier.Classify(new Storage.StorageException(Storage.StorageErrorKind.Forbidden, "403 on create container"));
        forbidden.Code.ShouldBe(StylizationErrorCode.StorageUnavailable);
        forbidden.Transient.ShouldBeFalse();
        var timeout = ErrorClassifier.Classify(new TaskCanceledException("timeout"));
        timeout.Code.ShouldBe(StylizationErrorCode.Timeout);
        timeout.Transient.ShouldBeTrue();
    }

    [Theory]
    [InlineData(new[] { 0 }, "RedeliveryDelaysSeconds:0 is 0")]
    [InlineData(new[] { 15, -5 }, "RedeliveryDelaysSeconds:1 is -5")]
    [InlineData(new[] { 3_000_000 }, "RedeliveryDelaysSeconds:0 is 3000000")]
    public void Redelivery_delays_outside_one_second_to_a_week_are_refused_by_name(int[] delays, string named)
    {
        var options = new WorkerOptions { RedeliveryDelaysSeconds = delays };
        var results = new List<System.ComponentModel.DataAnnotations.ValidationResult>();

        System.ComponentModel.DataAnnotations.Validator.TryValidateObject(options, new(options), results, validateAllProperties: true).ShouldBeFalse();

        results.ShouldContain(r => r.ErrorMessage!.Contains(named));
    }

    [Theory]
    [InlineData("rabbitmq://rabbit/", "amqp://rabbit/")]
    [InlineData("rabbitmqs://rabbit:5671/vhost", "amqps://rabbit:5671/vhost")]
    [InlineData("amqp://u@rabbit:5672/", "amqp://u@rabbit:5672/")]
    public void A_MassTransit_style_broker_url_is_mapped_for_RabbitMQ_Client(string url, string expected)
    {
        var broker = new BrokerOptions { Url = url };
        broker.Validate(new(broker)).ShouldBeEmpty();
        broker.ToAmqpUri().ToString().ShouldBe(expected);
    }

    [Fact]
    public void The_engines_own_checks_and_bad_images_are_permanent_failures()
    {
        var shape = Adapters.EngineStyleTransfer.ToJobFailure(new Inference.InferenceException(StylizationErrorCode.ModelError,
            "stylizer.onnx returned shape [1, 3, 8, 8]; expected [1, 3, 16, 16]."));
        shape.Code.ShouldBe(StylizationErrorCode.ModelError);
        shape.Transient.ShouldBeFalse();
        Adapters.EngineStyleTransfer.ToJobFailure(new Inference.InferenceException(StylizationErrorCode.InvalidImage, "content is 4 px")).Transient.ShouldBeFalse();
    }

    [Fact]
    public void Options_hash_changes_with_every_option()
    {
        var a = new StylizeOptions();
        var hashes = new[]
        {
            a, a with { Seed = 1 }, a with { Strength = 0.5f }, a with { Format = OutputFormat.Png }, a with { Quality = 80 },
            a with { MaxSide = 512 }, a with { PreserveColor = true },
        }.Select(OutputMetadata.HashOptions).ToArray();
        hashes.Distinct().Count().ShouldBe(hashes.Length);
        OutputMetadata.HashOptions(new StylizeOptions()).ShouldBe(hashes[0]);
    }
}
