using System.Collections.Concurrent;
using System.Text.Json;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Processing;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Jobs;
using MambaSt.Batch.Testing;

using MassTransit;

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MambaSt.Batch.Submitter.Tests;

[Trait(TestTraits.Category, TestTraits.Integration)]
public class BatchFlowTests(LocalServices services)
{
    private static CancellationToken Within(TimeSpan limit)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(limit);
        return cts.Token;
    }

    [Fact]
    public async Task Submit_then_watch_with_the_real_worker_pipeline_completes_and_report_has_one_row_per_job()
    {
        var ct = Within(TimeSpan.FromSeconds(120));
        using var dir = TempDir.WithImages(4, size: 64);
        var queue = $"stylize-test-{Guid.NewGuid():N}";
        using var worker = RealWorker(queue, dir.Root);
        await worker.StartAsync(ct);
        try
        {
            var (exit, output, error) = await CliRunner.RunAsync("submit", dir.Path("in"), "--style", dir.Path("style.png"), "--out", dir.Path("out"),
                "--format", "png", "--max-side", "64", "--broker", services.RabbitMqUrl, "--queue", queue, "--batch-id", "real-" + queue[^8..]);
            error.ShouldBeEmpty();
            exit.ShouldBe(0);
            output.ShouldContain("enqueued 4");

            var batchId = "real-" + queue[^8..];
            var watch = await CliRunner.RunAsync("watch", "--batch-id", batchId, "--output", dir.Path("out"), "--broker", services.RabbitMqUrl);
            watch.Error.ShouldBeEmpty();
            watch.Exit.ShouldBe(0);
            watch.Out.ShouldContain("4 done, 0 failed, 0 pending of 4");
            foreach (var name in new[] { "img0.png", "sub/img1.png", "img2.png", "sub/img3.png" }) File.Exists(dir.Path("out/" + name)).ShouldBeTrue(name);

            var report = await CliRunner.RunAsync("report", "--batch-id", batchId, "--output", dir.Path("out"), "--format", "json");
            report.Exit.ShouldBe(0);
            var rows = JsonSerializer.Deserialize<List<ReportRow>>(report.Out, JsonLines.Options)!;
            rows.Count.ShouldBe(4);
            rows.ShouldAllBe(r => r.Status == JobStatus.Done && r.TotalMs > 0);
        }
        finally
        {
            await worker.StopAsync(CancellationToken.None);
            await BatchTopology.DeleteWatchQueueAsync(Broker(queue), queue, CancellationToken.None);
        }
    }

    [Fact]
    public async Task Watch_exits_1_on_failures_report_explains_them_and_retry_failed_completes_the_batch()
    {
        // Plumbing test: a stand-in consumer (NOT the worker pipeline) answers each job with an event so
        // that watch, report and retry-failed are tested on their own; img1 fails on its first attempt.
        var ct = Within(TimeSpan.FromSeconds(90));
        using var dir = TempDir.WithImages(3);
        var queue = $"stylize-test-{Guid.NewGuid():N}";
        var batchId = "plumb-" + queue[^8..];
        var attempts = new ConcurrentDictionary<Guid, int>();
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(services.RabbitMqUri);
            cfg.ReceiveEndpoint(queue, e => e.Handler<StylizeImage>(async ctx =>
            {
                var m = ctx.Message;
                if (attempts.AddOrUpdate(m.JobId, 1, (_, n) => n + 1) == 1 && m.ContentRef.Contains("img1"))
                {
                    await ctx.Publish(new ImageStylizationFailed { JobId = m.JobId, BatchId = m.BatchId, ErrorCode = StylizationErrorCode.InvalidImage, Message = "stand-in failure", AttemptCount = 1, Transient = false },
                        p => p.Headers.Set(BatchTopology.BatchIdHeader, m.BatchId));
                    return;
                }

                await ctx.Publish(new ImageStylized
                {
                    JobId = m.JobId, BatchId = m.BatchId, OutputRef = m.OutputRef, Width = 1, Height = 1, OutputBytes = 1,
                    Timings = new StageTimings { TotalMs = 5 }, ModelId = "stand-in", ModelVersion = "0", WorkerId = "stand-in",
                }, p => p.Headers.Set(BatchTopology.BatchIdHeader, m.BatchId));
                await ctx.Publish(new ImageStylized
                {
                    JobId = Guid.NewGuid(), BatchId = "another-batch", OutputRef = "x", Width = 1, Height = 1, OutputBytes = 1,
                    Timings = new StageTimings(), ModelId = "stand-in", ModelVersion = "0", WorkerId = "stand-in",
                }, p => p.Headers.Set(BatchTopology.BatchIdHeader, "another-batch"));
            }));
        });
        await bus.StartAsync(ct);
        try
        {
            var submit = await CliRunner.RunAsync("submit", dir.Path("in"), "--style", dir.Path("style.png"), "--out", dir.Path("out"),
                "--broker", services.RabbitMqUrl, "--queue", queue, "--batch-id", batchId);
            submit.Exit.ShouldBe(0, submit.Error);

            var watch = await CliRunner.RunAsync("watch", "--batch-id", batchId, "--output", dir.Path("out"), "--broker", services.RabbitMqUrl);
            watch.Exit.ShouldBe(1, watch.Error);
            watch.Out.ShouldContain("2 done, 1 failed, 0 pending of 3");

            var report = await CliRunner.RunAsync("report", "--batch-id", batchId, "--output", dir.Path("out"), "--format", "csv");
            report.Exit.ShouldBe(0);
            var lines = report.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            lines.Length.ShouldBe(4);
            lines.Single(l => l.Contains("img1")).ShouldContain(",failed,");
            lines.Single(l => l.Contains("img1")).ShouldContain("InvalidImage,stand-in failure");
            lines.Count(l => l.Contains(",done,")).ShouldBe(2);

            var retry = await CliRunner.RunAsync("retry-failed", "--batch-id", batchId, "--output", dir.Path("out"), "--broker", services.RabbitMqUrl, "--queue", queue);
            retry.Exit.ShouldBe(0, retry.Error);
            retry.Out.ShouldContain("1 failed jobs sent again");

            var again = await CliRunner.RunAsync("watch", "--batch-id", batchId, "--output", dir.Path("out"), "--broker", services.RabbitMqUrl);
            again.Exit.ShouldBe(0, again.Error);
            again.Out.ShouldContain("3 done, 0 failed");
            attempts.Values.Sum().ShouldBe(4);
        }
        finally
        {
            await bus.StopAsync(CancellationToken.None);
            await BatchTopology.DeleteWatchQueueAsync(Broker(queue), queue, CancellationToken.None);
        }
    }

    [Fact]
    public async Task An_interrupted_submit_run_again_enqueues_each_job_exactly_once()
    {
        var ct = Within(TimeSpan.FromSeconds(90));
        using var dir = TempDir.WithImages(20, size: 8);
        var queue = $"stylize-test-{Guid.NewGuid():N}";
        var request = new SubmitRequest
        {
            Source = dir.Path("in"), Style = dir.Path("style.png"), Output = dir.Path("out"), Options = new StylizeOptions(),
            Broker = Broker(queue), MaxInFlight = 1, BatchId = "resume-" + queue[^8..],
        };
        using var interrupt = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var first = new Submission { Confirmed = n => { if (n == 5) interrupt.Cancel(); } };
        await Should.ThrowAsync<OperationCanceledException>(() => first.RunAsync(request, interrupt.Token));

        var second = await new Submission().RunAsync(request, ct);
        second.AlreadyEnqueued.ShouldBeInRange(5, 6);
        (second.AlreadyEnqueued + second.Enqueued).ShouldBe(20);

        var received = new ConcurrentDictionary<Guid, int>();
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(services.RabbitMqUri);
            cfg.ReceiveEndpoint(queue, e =>
            {
                // As the worker declares it: submit declared the (quorum) job queue before any worker ran.
                e.SetQuorumQueue();
                foreach (var (key, value) in QueueTopology.JobQueueArguments(new WorkerOptions { QueueName = queue }).Where(a => a.Key != "x-queue-type"))
                {
                    e.SetQueueArgument(key, value);
                }

                e.Handler<StylizeImage>(ctx =>
                {
                    received.AddOrUpdate(ctx.Message.JobId, 1, (_, n) => n + 1);
                    return Task.CompletedTask;
                });
            });
        });
        await bus.StartAsync(ct);
        try
        {
            while (received.Count < 20) await Task.Delay(50, ct);
            await Task.Delay(500, ct);
            received.Count.ShouldBe(20);
            received.Values.ShouldAllBe(n => n == 1);
            var manifest = JsonLines.Read<JobRecord>(await File.ReadAllTextAsync(dir.Path($"out/{BatchPaths.Jobs(request.BatchId!)}"), ct));
            manifest.Select(j => j.JobId).ToHashSet().SetEquals(received.Keys).ShouldBeTrue();
        }
        finally
        {
            await bus.StopAsync(CancellationToken.None);
            await BatchTopology.DeleteWatchQueueAsync(Broker(queue), queue, CancellationToken.None);
            await BatchTopology.DeleteWatchQueueAsync(Broker(queue), BatchPaths.WatchQueue(request.BatchId!), CancellationToken.None);
        }
    }

    private BrokerSettings Broker(string queue) => new() { Url = services.RabbitMqUri, Queue = queue };

    private IHost RealWorker(string queue, string root) => RealWorker(services, queue, root, null);

    /// <summary>The worker's pipeline and consumer (src/Processing) on RabbitMQ with the golden tiny model.</summary>
    internal static IHost RealWorker(LocalServices services, string queue, string root, string? blobConnection)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Inference:ModelDirectory"] = Path.Combine(RepoPaths.Fixtures, "golden", "tiny-sequential"),
            ["Worker:QueueName"] = queue,
            ["Worker:BatchTimeLimitMs"] = "50",
            ["Storage:LocalRoot"] = root,
            ["Storage:ConnectionString"] = blobConnection,
        });
        builder.Logging.ClearProviders();
        builder.Services.AddStylizationPipeline(builder.Configuration);
        builder.Services.AddMassTransit(x =>
        {
            x.AddStylizationConsumer();
            x.UsingRabbitMq((ctx, cfg) =>
            {
                cfg.Host(services.RabbitMqUri);
                cfg.ConfigureEndpoints(ctx);
            });
        });
        return builder.Build();
    }
}
