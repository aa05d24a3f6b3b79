using MambaSt.Batch.Contracts;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Storage;
using MambaSt.Batch.Testing;

using MassTransit;

using Spectre.Console;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary>
/// watch acknowledges an event only once the file that records it is written: when the write
/// fails (storage outage, crash) the events stay in the batch queue and the next watch gets them.
/// Real RabbitMQ; the storage fault comes from a wrapper around the real local store.
/// </summary>
[Trait(TestTraits.Category, TestTraits.Integration)]
public class WatchDurabilityTests(LocalServices services)
{
    [Fact]
    public async Task Events_whose_record_could_not_be_written_are_not_lost_and_the_next_watch_records_them()
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(120));
        var ct = limit.Token;
        using var dir = TempDir.WithImages(3, size: 8);
        var queue = $"stylize-test-{Guid.NewGuid():N}";
        var batchId = "durable-" + queue[^8..];
        var broker = new BrokerSettings { Url = services.RabbitMqUri, Queue = queue };
        try
        {
            var submit = await CliRunner.RunAsync("submit", dir.Path("in"), "--style", dir.Path("style.png"), "--out", dir.Path("out"),
                "--broker", services.RabbitMqUrl, "--queue", queue, "--batch-id", batchId);
            submit.Exit.ShouldBe(0, submit.Error);
            var jobs = JsonLines.Read<JobRecord>(await File.ReadAllTextAsync(dir.Path($"out/{BatchPaths.Jobs(batchId)}"), ct));
            jobs.Count.ShouldBe(3);

            var publisher = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(services.RabbitMqUri));
            await publisher.StartAsync(ct);
            try
            {
                foreach (var job in jobs)
                {
                    await publisher.Publish(new ImageStylized
                    {
                        JobId = job.JobId, BatchId = batchId, OutputRef = job.OutputRef, Width = 8, Height = 8, OutputBytes = 1,
                        Timings = new StageTimings { TotalMs = 1 }, ModelId = "stand-in", ModelVersion = "0", WorkerId = "stand-in",
                    }, ctx => ctx.Headers.Set(BatchTopology.BatchIdHeader, batchId), ct);
                }
            }
            finally
            {
                await publisher.StopAsync(CancellationToken.None);
            }

            var real = ArchiveStores.Open(dir.Path("out"));
            var outage = new FailingWritesStore(real, _ => true);
            var first = () => new BatchWatch(QuietConsole()).RunAsync(outage, batchId, broker, keepQueue: false, ct);
            var error = await Should.ThrowAsync<IOException>(first);
            error.Message.ShouldContain("storage outage");
            outage.Attempts.ShouldBeGreaterThan(0);

            var second = await new BatchWatch(QuietConsole()).RunAsync(real, batchId, broker, keepQueue: false, ct);
            second.Completed.ShouldBeTrue();
            second.Done.ShouldBe(3);
            var state = await BatchState.LoadAsync(real, batchId, ct);
            jobs.ShouldAllBe(j => state.StatusOf(j.JobId) == JobStatus.Done);
        }
        finally
        {
            await BatchTopology.DeleteWatchQueueAsync(broker, queue, CancellationToken.None);
            await BatchTopology.DeleteWatchQueueAsync(broker, BatchPaths.WatchQueue(batchId), CancellationToken.None);
        }
    }

    private static IAnsiConsole QuietConsole() =>
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null), Interactive = InteractionSupport.No });
}
