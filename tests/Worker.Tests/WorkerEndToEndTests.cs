using MambaSt.Batch.Contracts;
using MambaSt.Batch.Processing;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Worker.Tests;

/// <summary>The worker process against the real RabbitMQ, Azurite and ONNX Runtime (tiny golden model).</summary>
[Trait(TestTraits.Category, TestTraits.Integration)]
public class WorkerEndToEndTests(LocalServices services)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Fifty_jobs_give_fifty_outputs_and_fifty_events()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var h = new PipelineHarness(services);
        await h.StartListeningAsync(ct);
        var jobs = await h.UploadJobsAsync(50, 64, 48, ct);

        await using var worker = WorkerProcess.Start(h.WorkerSettings());
        await h.SendAsync(jobs, ct);
        await h.WaitForOutcomesAsync(50, Patience, () => worker.Log, ct);

        h.Failed.ShouldBeEmpty();
        h.Completed.Select(c => c.JobId).Distinct().Count().ShouldBe(50);
        h.Completed.Count.ShouldBe(50);
        var outputs = await h.OutputsAsync(ct);
        outputs.Count.ShouldBe(50);
        var first = h.Completed.First();
        first.Width.ShouldBe(64);
        first.Height.ShouldBe(48);
        first.ModelVersion.ShouldNotBeNullOrEmpty();
        first.Timings.InferenceMs.ShouldBeGreaterThan(0);

        var props = await h.Store.GetPropertiesAsync("out/000.png", ct);
        OutputMetadata.Get(props.Metadata, OutputMetadata.JobId).ShouldBe(jobs[0].JobId.ToString("D"));
        await using var png = await h.Store.OpenReadAsync("out/000.png", ct);
        using var copy = new MemoryStream();
        await png.CopyToAsync(copy, ct);
        var decoded = h.Codec.Decode(copy.ToArray());
        (decoded.Width, decoded.Height).ShouldBe((64, 48));
    }

    [Fact]
    public async Task A_corrupt_image_gives_one_failed_event_and_no_retry_storm()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var h = new PipelineHarness(services);
        await h.StartListeningAsync(ct);
        await h.UploadAsync("styles/style.jpg", h.MakeJpeg(5, 32, 32), ct);
        var good = h.MakeJpeg(1);
        await h.UploadAsync("in/good.jpg", good, ct);
        await h.UploadAsync("in/corrupt.jpg", good[..(good.Length / 3)], ct);
        var jobs = new[] { h.Job("in/good.jpg"), h.Job("in/corrupt.jpg"), h.Job("in/missing.jpg") };

        await using var worker = WorkerProcess.Start(h.WorkerSettings());
        await h.SendAsync(jobs, ct);
        await h.WaitForOutcomesAsync(3, Patience, () => worker.Log, ct);
        await Task.Delay(2500, ct); // a redelivery (1 s delay in this test) would have shown up by now

        h.Completed.Select(c => c.JobId).ShouldBe([jobs[0].JobId]);
        var failures = h.Failed.ToDictionary(f => f.JobId);
        failures.Count.ShouldBe(2);
        h.Failed.Count.ShouldBe(2);
        failures[jobs[1].JobId].ErrorCode.ShouldBe(StylizationErrorCode.InvalidImage);
        failures[jobs[1].JobId].Transient.ShouldBeFalse();
        failures[jobs[1].JobId].AttemptCount.ShouldBe(1);
        failures[jobs[2].JobId].ErrorCode.ShouldBe(StylizationErrorCode.NotFound);
        worker.Log.ShouldNotContain("redelivery 1/");
    }

    [Fact]
    public async Task A_job_submitted_again_is_not_computed_again_and_its_event_is_published_again()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var h = new PipelineHarness(services);
        await h.StartListeningAsync(ct);
        await h.UploadAsync("styles/style.jpg", h.MakeJpeg(5, 32, 32), ct);
        await h.UploadAsync("in/a.jpg", h.MakeJpeg(1), ct);
        var job = h.Job("in/a.jpg");

        await using var worker = WorkerProcess.Start(h.WorkerSettings());
        await h.SendAsync([job], ct);
        await h.WaitForOutcomesAsync(1, Patience, () => worker.Log, ct);
        var before = await h.Store.GetPropertiesAsync("out/a.png", ct);

        await h.SendAsync([job], ct);
        var deadline = DateTime.UtcNow + Patience;
        while (h.Completed.Count < 2 && DateTime.UtcNow < deadline) await Task.Delay(100, ct);

        h.Completed.Count.ShouldBe(2);
        h.Completed.Last().Reused.ShouldBeTrue();
        h.Completed.Last().OutputBytes.ShouldBe(h.Completed.First().OutputBytes);
        var after = await h.Store.GetPropertiesAsync("out/a.png", ct);
        after.ETag.ShouldBe(before.ETag);
    }

    [Fact]
    public async Task Health_endpoints_report_live_and_ready_once_the_model_is_loaded_and_the_bus_connected()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var h = new PipelineHarness(services);
        var settings = h.WorkerSettings();
        await using var worker = WorkerProcess.Start(settings);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{settings["Health__Port"]}") };

        var deadline = DateTime.UtcNow + Patience;
        HttpResponseMessage? ready = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                ready = await http.GetAsync("/health/ready", ct);
                if (ready.IsSuccessStatusCode) break;
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(250, ct);
        }

        ready.ShouldNotBeNull(worker.Log);
        ready.StatusCode.ShouldBe(System.Net.HttpStatusCode.OK, worker.Log);
        (await http.GetAsync("/health/live", ct)).StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("Worker__BatchMessageLimit", "0", "BatchMessageLimit")]
    [InlineData("Broker__Url", "http://not-a-broker/", "Broker:Url")]
    [InlineData("Inference__ModelDirectory", "/nonexistent/model", "/nonexistent/model")]
    public async Task A_bad_setting_stops_the_worker_at_start_with_a_message_naming_it(string key, string value, string named)
    {
        await using var h = new PipelineHarness(services);
        await using var worker = WorkerProcess.Start(h.WorkerSettings(new() { [key] = value }));

        var exitCode = await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        exitCode.ShouldNotBe(0);
        worker.Log.ShouldContain(named);
    }
}
