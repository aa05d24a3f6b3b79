using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Storage;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Submitter.Tests;

[Trait(TestTraits.Category, TestTraits.Integration)]
public class BlobFlowTests(LocalServices services)
{
    [Fact]
    public async Task A_local_folder_submitted_to_Azurite_is_uploaded_and_stylized_by_the_real_worker_and_a_rerun_skips_it()
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(120));
        var ct = cts.Token;
        Environment.SetEnvironmentVariable("Storage__ConnectionString", services.BlobConnectionString);
        using var dir = TempDir.WithImages(2, size: 64);
        var queue = $"stylize-test-{Guid.NewGuid():N}";
        var output = $"az://mambast-submit-{Guid.NewGuid():N}"[..40] + "/stylized";
        using var worker = BatchFlowTests.RealWorker(services, queue, dir.Root, services.BlobConnectionString);
        await worker.StartAsync(ct);
        try
        {
            string[] submitArgs = ["submit", dir.Path("in"), "--style", dir.Path("style.png"), "--output", output, "--max-side", "64",
                "--broker", services.RabbitMqUrl, "--queue", queue, "--batch-id", "blob-" + queue[^8..]];
            var submit = await CliRunner.RunAsync(submitArgs);
            submit.Exit.ShouldBe(0, submit.Error);
            submit.Out.ShouldContain("enqueued 2, uploaded 3 files");

            var watch = await CliRunner.RunAsync("watch", "--batch-id", "blob-" + queue[^8..], "--broker", services.RabbitMqUrl);
            watch.Exit.ShouldBe(0, watch.Error);
            watch.Out.ShouldContain("2 done, 0 failed, 0 pending of 2");

            var store = ArchiveStores.Open(output);
            (await store.ExistsAsync("img0.jpg", ct)).ShouldBeTrue();
            (await store.ExistsAsync("sub/img1.jpg", ct)).ShouldBeTrue();
            var rows = await BatchReport.BuildAsync(store, "blob-" + queue[^8..], ct);
            rows.Count.ShouldBe(2);
            rows.ShouldAllBe(r => r.Status == JobStatus.Done && r.ContentRef.StartsWith(output + "/_mambast/inputs/"));

            var again = await CliRunner.RunAsync(submitArgs);
            again.Exit.ShouldBe(0, again.Error);
            again.Out.ShouldContain("2 already done, 0 enqueued earlier, enqueued 0");
        }
        finally
        {
            await worker.StopAsync(CancellationToken.None);
            await BatchTopology.DeleteWatchQueueAsync(new BrokerSettings { Url = services.RabbitMqUri, Queue = queue }, queue, CancellationToken.None);
        }
    }
}
