using MambaSt.Batch.Contracts;
using MambaSt.Batch.Submitter.Jobs;
using MambaSt.Batch.Submitter.Storage;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Submitter.Tests;

[Trait(TestTraits.Category, TestTraits.Integration)]
public class BlobSourceTests(LocalServices services)
{
    [Fact]
    public async Task A_blob_prefix_source_gets_ids_from_name_size_and_etag_and_a_rewritten_blob_gets_a_new_id()
    {
        var ct = TestContext.Current.CancellationToken;
        Environment.SetEnvironmentVariable("Storage__ConnectionString", services.BlobConnectionString);
        var container = $"az://mambast-src-{Guid.NewGuid():N}"[..37];
        var source = (BlobArchiveStore)ArchiveStores.Open(container + "/photos");
        await source.CreateContainerIfMissingAsync(ct);
        await source.WriteTextAsync("a.jpg", "first", ct);
        await source.WriteTextAsync("sub/b.png", "second", ct);
        await source.WriteTextAsync("notes.txt", "not an image", ct);
        await ((BlobArchiveStore)ArchiveStores.Open(container + "/styles")).WriteTextAsync("s.png", "style", ct);

        var request = new SubmitRequest
        {
            Source = container + "/photos", Style = container + "/styles/s.png", Output = container + "/out",
            Options = new StylizeOptions(), DryRun = true,
        };
        var first = await new Submission().RunAsync(request, ct);
        first.ToEnqueue.Select(j => j.RelativePath).ShouldBe(["a.jpg", "sub/b.png"]);
        first.ToEnqueue[0].ContentRef.ShouldBe(container + "/photos/a.jpg");
        first.ToEnqueue[0].OutputRef.ShouldBe(container + "/out/a.jpg");

        var same = await new Submission().RunAsync(request, ct);
        same.ToEnqueue.Select(j => j.JobId).ShouldBe(first.ToEnqueue.Select(j => j.JobId));
        same.BatchId.ShouldBe(first.BatchId);

        await source.WriteTextAsync("a.jpg", "first", ct);
        var rewritten = await new Submission().RunAsync(request, ct);
        rewritten.ToEnqueue[0].JobId.ShouldNotBe(first.ToEnqueue[0].JobId);
        rewritten.ToEnqueue[1].JobId.ShouldBe(first.ToEnqueue[1].JobId);
        (await ArchiveStores.Open(container + "/out").ExistsAsync("_mambast/batches/" + first.BatchId + "/jobs.jsonl", ct)).ShouldBeFalse();
    }
}
