using MambaSt.Batch.Storage;
using MambaSt.Batch.Storage.AzureBlobs;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Storage;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary>A batch whose output is a SAS URL: the records in the output keep no SAS (issue 22: it can write there; the
/// owner-only local batch index keeps it), the jobs sent carry it, nothing printed shows its signature.</summary>
[Trait(TestTraits.Category, TestTraits.Integration)]
public class SasRedactionTests
{
    private readonly LocalServices services;

    public SasRedactionTests(LocalServices services)
    {
        this.services = services;
        // The SAS output is on the configured (emulator) account: the allow-list's default.
        Environment.SetEnvironmentVariable("Storage__ConnectionString", services.BlobConnectionString);
    }

    [Fact]
    public async Task Submit_watch_report_and_errors_of_a_batch_with_a_sas_output_never_print_the_signature()
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(120));
        var ct = cts.Token;
        var account = BlobAccount.FromConnectionString(services.BlobConnectionString);
        var container = $"mambast-sig-{Guid.NewGuid():N}"[..30];
        await new AzureBlobStore(account, container, new StorageOptions()).CreateContainerIfMissingAsync(ct);
        var sas = ContainerSas.Create(account.AccountName, ContainerSas.Setting(services.BlobConnectionString, "AccountKey"), container, "racwl", DateTimeOffset.UtcNow.AddHours(1));
        var signature = sas.Split('&').Single(p => p.StartsWith("sig=", StringComparison.Ordinal))[4..];
        var output = $"{account.Endpoint}/{container}/out?{sas}";

        using var dir = TempDir.WithImages(2, size: 8);
        var queue = $"stylize-test-{Guid.NewGuid():N}";
        var batchId = "sig-" + queue[^8..];
        string[] submit = ["submit", dir.Path("in"), "--style", dir.Path("style.png"), "--out", output, "--broker", services.RabbitMqUrl, "--queue", queue, "--batch-id", batchId];
        var printed = new List<string>();
        try
        {
            var dryRun = await CliRunner.RunAsync([.. submit, "--dry-run"]);
            dryRun.Exit.ShouldBe(0, dryRun.Error);
            dryRun.Out.ShouldContain("would enqueue 2");
            printed.Add(dryRun.Out + dryRun.Error);

            var sent = await CliRunner.RunAsync(submit);
            sent.Exit.ShouldBe(0, sent.Error);
            printed.Add(sent.Out + sent.Error);
            var store = ArchiveStores.Open(output);
            var jobs = (await BatchState.LoadAsync(store, batchId, ct)).Jobs;
            jobs.ShouldAllBe(j => !j.OutputRef.Contains('?') && !j.ContentRef.Contains('?'));
            var folder = BatchPaths.Folder(batchId);
            var records = new List<string>();
            await foreach (var item in store.ListAsync(folder, ct)) records.Add((await store.ReadTextAsync(item.RelativePath, ct))!);
            records.Count.ShouldBeGreaterThanOrEqualTo(3); // batch.json, jobs.jsonl, enqueued-*.jsonl
            foreach (var record in records)
            {
                record.ShouldNotContain(signature);
                record.ShouldNotContain(Uri.UnescapeDataString(signature));
                record.ShouldNotContain(Uri.EscapeDataString(signature));
            }

            // The jobs on the queue carry the SAS: workers need it to write the outputs.
            await using (var connection = await new RabbitMQ.Client.ConnectionFactory { Uri = services.RabbitMqUri }.CreateConnectionAsync(ct))
            await using (var channel = await connection.CreateChannelAsync(cancellationToken: ct))
            {
                var sentJob = await channel.BasicGetAsync(queue, autoAck: false, ct);
                sentJob.ShouldNotBeNull();
                System.Text.Encoding.UTF8.GetString(sentJob.Body.Span).ShouldContain("sig=");
            }

            // Stand-in outputs as a worker writes them: metadata naming the job (a file alone no longer counts as done).
            var blobs = new AzureBlobStore(account, container, new StorageOptions());
            foreach (var job in jobs)
            {
                await blobs.PutAsync("out/" + job.OutputPath, new MemoryStream("stand-in output"u8.ToArray()),
                    new BlobWriteOptions { Metadata = new Dictionary<string, string> { ["mambast_job_id"] = job.JobId.ToString() } }, ct);
            }

            var watch = await CliRunner.RunAsync("watch", "--batch-id", batchId, "--output", output, "--broker", services.RabbitMqUrl);
            watch.Exit.ShouldBe(0, watch.Error);
            watch.Out.ShouldContain("2 done, 0 failed, 0 pending of 2; outputs under");
            watch.Out.ShouldContain($"{container}/out?");
            printed.Add(watch.Out + watch.Error);

            foreach (var format in new[] { "csv", "json" })
            {
                var report = await CliRunner.RunAsync("report", "--batch-id", batchId, "--output", output, "--format", format);
                report.Exit.ShouldBe(0, report.Error);
                // The records hold no SAS of the output any more, so there is nothing left to redact.
                string.Concat(report.Out.Where(c => !char.IsWhiteSpace(c))).ShouldContain($"{container}/out/");
                report.Out.ShouldNotContain("sig=");
                printed.Add(report.Out + report.Error);
            }

            var missing = await CliRunner.RunAsync("report", "--batch-id", "no-such-batch", "--output", output);
            missing.Exit.ShouldBe(2);
            missing.Error.ShouldContain("not found");
            printed.Add(missing.Out + missing.Error);

            foreach (var text in printed.Select(p => string.Concat(p.Where(c => !char.IsWhiteSpace(c))))) // the console wraps long lines
            {
                text.ShouldNotContain(signature);
                text.ShouldNotContain(Uri.UnescapeDataString(signature));
            }
        }
        finally
        {
            var broker = new BrokerSettings { Url = services.RabbitMqUri, Queue = queue };
            await BatchTopology.DeleteWatchQueueAsync(broker, queue, CancellationToken.None);
            await BatchTopology.DeleteWatchQueueAsync(broker, BatchPaths.WatchQueue(batchId), CancellationToken.None);
        }
    }

    [Fact]
    public void The_local_batch_index_which_keeps_a_sas_location_is_readable_by_its_owner_only()
    {
        if (OperatingSystem.IsWindows()) return;
        var batchId = "sig-index-" + Guid.NewGuid().ToString("N")[..8];
        var file = Path.Combine(LocalBatchIndex.Directory, "batches", batchId + ".txt");
        try
        {
            LocalBatchIndex.Remember(batchId, "https://account.blob.core.windows.net/c/out?sv=2021-08-06&sig=secret");
            LocalBatchIndex.Resolve(batchId, null).ShouldEndWith("sig=secret");
            File.GetUnixFileMode(file).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
