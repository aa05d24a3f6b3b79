using MambaSt.Batch.Contracts;
using MambaSt.Batch.Storage;
using MambaSt.Batch.Storage.AzureBlobs;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Jobs;
using MambaSt.Batch.Submitter.Storage;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary>submit to an output given as a container SAS URL (sr=c, sp=racwl), on real Azurite and RabbitMQ.</summary>
[Trait(TestTraits.Category, TestTraits.Integration)]
public class ContainerSasSubmitTests(LocalServices services)
{
    [Fact]
    public async Task A_submit_to_a_container_sas_url_enqueues_although_the_sas_cannot_create_containers()
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(120));
        var ct = cts.Token;
        Environment.SetEnvironmentVariable("Storage__ConnectionString", services.BlobConnectionString);
        var account = BlobAccount.FromConnectionString(services.BlobConnectionString);
        var container = $"mambast-sas-{Guid.NewGuid():N}"[..30];
        await new AzureBlobStore(account, container, new StorageOptions()).CreateContainerIfMissingAsync(ct);
        var sas = ContainerSas.Create(account.AccountName, ContainerSas.Setting(services.BlobConnectionString, "AccountKey"), container, "racwl", DateTimeOffset.UtcNow.AddHours(1));
        var sasStore = new AzureBlobStore(BlobAccount.WithSas(account.Endpoint, sas), container, new StorageOptions());
        var denied = await Should.ThrowAsync<StorageException>(() => sasStore.CreateContainerIfMissingAsync(ct));
        denied.Status.ShouldBe(403);

        using var dir = TempDir.WithImages(2, size: 8);
        var queue = $"stylize-test-{Guid.NewGuid():N}";
        var broker = new BrokerSettings { Url = services.RabbitMqUri, Queue = queue };
        var batchId = "sas-" + queue[^8..];
        var output = $"{account.Endpoint}/{container}/out?{sas}";
        try
        {
            var result = await new Submission().RunAsync(new SubmitRequest
            {
                Source = dir.Path("in"), Style = dir.Path("style.png"), Output = output, Options = new StylizeOptions(),
                Broker = broker, BatchId = batchId,
            }, ct);

            result.Enqueued.ShouldBe(2);
            result.Uploaded.ShouldBe(3);
            (await BatchTopology.CountMessagesAsync(broker, queue, ct)).ShouldBe(2u);
            var state = await BatchState.LoadAsync(ArchiveStores.Open(output), batchId, ct);
            state.Jobs.Count.ShouldBe(2);
            state.Enqueued.Count.ShouldBe(2);
        }
        finally
        {
            await BatchTopology.DeleteWatchQueueAsync(broker, queue, CancellationToken.None);
            await BatchTopology.DeleteWatchQueueAsync(broker, BatchPaths.WatchQueue(batchId), CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_submit_to_a_container_sas_url_of_a_missing_container_fails_with_ContainerNotFound()
    {
        // The SAS names the configured (emulator) account, which the allow-list admits by default; set here, not left
        // to whichever test of this process set it first.
        Environment.SetEnvironmentVariable("Storage__ConnectionString", services.BlobConnectionString);
        var account = BlobAccount.FromConnectionString(services.BlobConnectionString);
        var container = $"mambast-none-{Guid.NewGuid():N}"[..30];
        var sas = ContainerSas.Create(account.AccountName, ContainerSas.Setting(services.BlobConnectionString, "AccountKey"), container, "racwl", DateTimeOffset.UtcNow.AddHours(1));
        using var dir = TempDir.WithImages(1, size: 8);

        var (exit, _, error) = await CliRunner.RunAsync("submit", dir.Path("in"), "--style", dir.Path("style.png"), "--out", $"{account.Endpoint}/{container}/out?{sas}",
            "--broker", services.RabbitMqUrl, "--queue", $"stylize-test-{Guid.NewGuid():N}");

        exit.ShouldBe(2, error);
        error.ShouldContain("ContainerNotFound");
        error.ShouldContain(container);
        error.ShouldNotContain("sig=");
    }
}
