using System.Diagnostics;
using MambaSt.Batch.Contracts;
using MambaSt.Batch.Processing;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Worker.Tests;

/// <summary>Failures of the process and of the broker in the middle of a run.</summary>
[Trait(TestTraits.Category, TestTraits.Chaos)]
public class WorkerChaosTests(LocalServices services)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(150);

    [Fact]
    public async Task A_worker_killed_mid_batch_and_started_again_completes_every_job_exactly_once()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var h = new PipelineHarness(services);
        await h.StartListeningAsync(ct);
        var jobs = await h.UploadJobsAsync(40, 192, 144, ct);

        var settings = h.WorkerSettings(new() { ["Worker__BatchMessageLimit"] = "2", ["Worker__PrefetchCount"] = "4" });
        var first = WorkerProcess.Start(settings);
        await h.SendAsync(jobs, ct);
        var deadline = DateTime.UtcNow + Patience;
        while (h.Completed.Count < 4 && DateTime.UtcNow < deadline) await Task.Delay(20, ct);
        first.Kill();
        await first.WaitForExitAsync(TimeSpan.FromSeconds(10));
        var doneBeforeKill = h.DistinctOutcomes;
        await first.DisposeAsync();
        doneBeforeKill.ShouldBeLessThan(40, "the kill must land in the middle of the run");

        await using var second = WorkerProcess.Start(settings);
        await h.WaitForOutcomesAsync(40, Patience, () => second.Log, ct);
        await Task.Delay(1000, ct);

        h.Failed.ShouldBeEmpty();
        h.Completed.Select(c => c.JobId).Distinct().Count().ShouldBe(40);
        // Events are at-least-once: only jobs in flight at the kill (at most the prefetch window) may repeat.
        (h.Completed.Count - 40).ShouldBeLessThanOrEqualTo(4);
        var outputs = await h.OutputsAsync(ct);
        outputs.Count.ShouldBe(40);
        var owners = new HashSet<string>();
        foreach (var o in outputs)
        {
            var props = await h.Store.GetPropertiesAsync(o.Name, ct);
            owners.Add(OutputMetadata.Get(props.Metadata, OutputMetadata.JobId)!);
        }

        owners.Count.ShouldBe(40);
    }

    [Fact]
    public async Task SIGTERM_finishes_the_batch_in_hand_stops_cleanly_and_loses_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var h = new PipelineHarness(services);
        await h.StartListeningAsync(ct);
        var jobs = await h.UploadJobsAsync(24, 192, 144, ct);

        var settings = h.WorkerSettings(new() { ["Worker__BatchMessageLimit"] = "2", ["Worker__PrefetchCount"] = "4" });
        var first = WorkerProcess.Start(settings);
        await h.SendAsync(jobs, ct);
        var deadline = DateTime.UtcNow + Patience;
        while (h.Completed.Count < 2 && DateTime.UtcNow < deadline) await Task.Delay(20, ct);
        first.Terminate();
        var exitCode = await first.WaitForExitAsync(TimeSpan.FromSeconds(40));
        var doneAtStop = h.DistinctOutcomes;
        var firstLog = first.Log;
        await first.DisposeAsync();
        exitCode.ShouldBe(0, firstLog);
        doneAtStop.ShouldBeLessThan(24, "SIGTERM must land in the middle of the run");

        await using var second = WorkerProcess.Start(settings);
        await h.WaitForOutcomesAsync(24, Patience, () => second.Log, ct);

        h.Failed.ShouldBeEmpty();
        h.Completed.Select(c => c.JobId).Distinct().Count().ShouldBe(24);
        (await h.OutputsAsync(ct)).Count.ShouldBe(24);
    }

    [Fact]
    public async Task The_worker_reconnects_after_RabbitMQ_restarts_and_finishes()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var broker = await PrivateRabbitMq.StartAsync(services, ct);
        await using var h = new PipelineHarness(services, broker.Url, autoDeleteObserver: false);
        await h.StartListeningAsync(ct);
        var jobs = await h.UploadJobsAsync(30, 192, 144, ct);

        await using var worker = WorkerProcess.Start(h.WorkerSettings(new() { ["Worker__BatchMessageLimit"] = "2", ["Worker__PrefetchCount"] = "4" }));
        await h.SendAsync(jobs, ct);
        var deadline = DateTime.UtcNow + Patience;
        while (h.Completed.Count < 3 && DateTime.UtcNow < deadline) await Task.Delay(20, ct);

        await broker.RestartAsync(ct);

        await h.WaitForOutcomesAsync(30, Patience, () => worker.Log, ct);
        h.Failed.ShouldBeEmpty();
        h.Completed.Select(c => c.JobId).Distinct().Count().ShouldBe(30);
        (await h.OutputsAsync(ct)).Count.ShouldBe(30);
        worker.HasExited.ShouldBeFalse();
    }
}

/// <summary>A RabbitMQ of this test's own (another port and data folder), so restarting it disturbs nobody.</summary>
internal sealed class PrivateRabbitMq : IAsyncDisposable
{
    private readonly LocalServices _services;
    private readonly string _dir;
    private readonly int _port;

    private PrivateRabbitMq(LocalServices services, string dir, int port)
    {
        _services = services;
        _dir = dir;
        _port = port;
    }

    public string Url => $"amqp://guest:guest@127.0.0.1:{_port}/";

    public static async Task<PrivateRabbitMq> StartAsync(LocalServices services, CancellationToken ct)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"mambast-rabbit-{Guid.NewGuid():N}");
        var broker = new PrivateRabbitMq(services, dir, 21900 + Random.Shared.Next(0, 50));
        await broker.RunAsync("start-rabbitmq", ct);
        return broker;
    }

    public async Task RestartAsync(CancellationToken ct)
    {
        await RunAsync("stop-rabbitmq", ct);
        await Task.Delay(2000, ct);
        await RunAsync("start-rabbitmq", ct);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await RunAsync("stop-rabbitmq", CancellationToken.None);
        }
        finally
        {
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task RunAsync(string verb, CancellationToken ct)
    {
        var psi = new ProcessStartInfo("bash", [_services.ServicesScript, verb]) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        psi.Environment["MAMBAST_RABBITMQ_PORT"] = _port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        psi.Environment["MAMBAST_SERVICES_DIR"] = _dir;
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync(ct);
        await p.StandardOutput.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        if (p.ExitCode != 0) throw new InvalidOperationException($"services.sh {verb} (port {_port}) failed: {await err}");
    }
}
