using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Storage.Tests;

/// <summary>Behaviour both stores share; each subclass supplies a fresh, empty store.</summary>
public abstract class BlobStoreContract
{
    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected abstract Task<IBlobStore> NewStoreAsync();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(10 * 1024 * 1024)]
    public async Task Round_trip_returns_the_same_bytes_and_length(int length)
    {
        var store = await NewStoreAsync();
        var data = TestStores.Bytes(length, length);

        var written = await store.PutAsync($"round/{length}.bin", new MemoryStream(data), null, Ct);

        written.Length.ShouldBe(length);
        (await TestStores.ReadAllAsync(store, $"round/{length}.bin")).ShouldBe(data);
        (await store.GetPropertiesAsync($"round/{length}.bin", Ct)).Length.ShouldBe(length);
    }

    [Fact]
    public async Task Overwrite_replaces_content_unless_create_if_absent()
    {
        var store = await NewStoreAsync();
        await store.PutAsync("o.txt", new MemoryStream("one"u8.ToArray()), null, Ct);
        await store.PutAsync("o.txt", new MemoryStream("two"u8.ToArray()), null, Ct);

        (await TestStores.ReadAllAsync(store, "o.txt")).ShouldBe("two"u8.ToArray());
    }

    [Fact]
    public async Task Create_if_absent_twice_keeps_the_first_and_reports_AlreadyExists()
    {
        var store = await NewStoreAsync();
        var first = new BlobWriteOptions { IfAbsent = true, ContentType = "image/jpeg" };
        await store.PutAsync("out/a.jpg", new MemoryStream("first"u8.ToArray()), first, Ct);

        var e = await Should.ThrowAsync<StorageException>(() => store.PutAsync("out/a.jpg", new MemoryStream("second"u8.ToArray()), first, Ct));

        e.Kind.ShouldBe(StorageErrorKind.AlreadyExists);
        e.IsTransient.ShouldBeFalse();
        (await TestStores.ReadAllAsync(store, "out/a.jpg")).ShouldBe("first"u8.ToArray());
    }

    [Fact]
    public async Task Missing_blob_is_NotFound_for_read_and_properties_and_delete_says_false()
    {
        var store = await NewStoreAsync();

        var read = await Should.ThrowAsync<StorageException>(() => store.OpenReadAsync("nope/missing.jpg", Ct));
        var head = await Should.ThrowAsync<StorageException>(() => store.GetPropertiesAsync("nope/missing.jpg", Ct));

        read.Kind.ShouldBe(StorageErrorKind.NotFound);
        read.ErrorCode.ShouldBe(StylizationErrorCode.NotFound);
        read.IsTransient.ShouldBeFalse();
        head.Kind.ShouldBe(StorageErrorKind.NotFound);
        (await store.DeleteAsync("nope/missing.jpg", Ct)).ShouldBeFalse();
        (await store.ExistsAsync("nope/missing.jpg", Ct)).ShouldBeFalse();
    }

    [Fact]
    public async Task Delete_removes_the_blob_and_its_metadata()
    {
        var store = await NewStoreAsync();
        await store.PutAsync("d/x.bin", new MemoryStream([1, 2, 3]), new BlobWriteOptions { Metadata = new Dictionary<string, string> { ["jobid"] = "1" } }, Ct);

        (await store.DeleteAsync("d/x.bin", Ct)).ShouldBeTrue();

        (await store.ExistsAsync("d/x.bin", Ct)).ShouldBeFalse();
        (await store.ListAsync("d/", Ct).ToListAsync(Ct)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Metadata_and_content_type_round_trip()
    {
        var store = await NewStoreAsync();
        var jobId = Guid.NewGuid().ToString();
        var metadata = new Dictionary<string, string>
        {
            ["mambast_job_id"] = jobId,
            ["mambast_model_version"] = "mamba-st-1.2.0",
            ["mambast_style_hash"] = "sha256:0f3a9c",
        };

        await store.PutAsync("meta/o.png", new MemoryStream([9, 8, 7]), new BlobWriteOptions { ContentType = "image/png", Metadata = metadata }, Ct);
        var properties = await store.GetPropertiesAsync("meta/o.png", Ct);

        properties.ContentType.ShouldBe("image/png");
        properties.Length.ShouldBe(3);
        properties.Metadata["mambast_job_id"].ShouldBe(jobId);
        properties.Metadata["mambast_model_version"].ShouldBe("mamba-st-1.2.0");
        properties.Metadata["mambast_style_hash"].ShouldBe("sha256:0f3a9c");
        properties.Metadata.Count.ShouldBe(3);
    }

    [Fact]
    public async Task Bad_metadata_is_refused_before_anything_is_written()
    {
        var store = await NewStoreAsync();
        var bad = new BlobWriteOptions { Metadata = new Dictionary<string, string> { ["job-id"] = "1" } };

        var e = await Should.ThrowAsync<StorageException>(() => store.PutAsync("m.bin", new MemoryStream([1]), bad, Ct));

        e.Kind.ShouldBe(StorageErrorKind.InvalidRequest);
        e.Message.ShouldContain("job-id");
        (await store.ExistsAsync("m.bin", Ct)).ShouldBeFalse();
    }

    [Fact]
    public async Task Listing_2500_blobs_takes_three_pages_in_name_order()
    {
        var store = await NewStoreAsync();
        var names = Enumerable.Range(0, 2500).Select(i => $"many/{i:D5}.txt").ToList();
        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = Ct }, async (name, ct) =>
            await store.PutAsync(name, new MemoryStream([(byte)name.Length]), null, ct));
        await store.PutAsync("other/not-listed.txt", new MemoryStream([1]), null, Ct);

        var pages = new List<BlobPage>();
        string? token = null;
        do
        {
            var page = await store.ListPageAsync("many/", token, 1000, Ct);
            pages.Add(page);
            token = page.ContinuationToken;
        }
        while (token is not null && pages.Count < 10);

        pages.Select(p => p.Items.Count).ShouldBe([1000, 1000, 500]);
        pages.SelectMany(p => p.Items).Select(i => i.Name).ShouldBe(names);
        pages.SelectMany(p => p.Items).ShouldAllBe(i => i.Length == 1);
        (await store.ListAsync("many/0249", Ct).CountAsync(Ct)).ShouldBe(10);
    }

    [Theory]
    [InlineData("../escape.jpg")]
    [InlineData("a/../../escape.jpg")]
    [InlineData("/etc/passwd")]
    [InlineData("a\\b.jpg")]
    [InlineData("a\0b.jpg")]
    [InlineData("a/%2e%2e/b.jpg")]
    [InlineData("a%2Fb.jpg")]
    [InlineData("a\u2215..\u2215b.jpg")]
    [InlineData("a/\u200Bb.jpg")]
    [InlineData("a//b.jpg")]
    [InlineData("")]
    public async Task Names_that_could_escape_or_confuse_are_refused_with_InvalidName(string name)
    {
        var store = await NewStoreAsync();

        var put = await Should.ThrowAsync<StorageException>(() => store.PutAsync(name, new MemoryStream([1]), null, Ct));
        var read = await Should.ThrowAsync<StorageException>(() => store.OpenReadAsync(name, Ct));

        put.Kind.ShouldBe(StorageErrorKind.InvalidName);
        put.Message.ShouldStartWith("Refused blob name");
        read.Kind.ShouldBe(StorageErrorKind.InvalidName);
    }

    [Fact]
    public async Task Names_with_unicode_and_spaces_work()
    {
        var store = await NewStoreAsync();
        const string name = "photos/été 2024/naïve #1+2.jpg";

        await store.PutAsync(name, new MemoryStream([4, 2]), null, Ct);

        (await TestStores.ReadAllAsync(store, name)).ShouldBe(new byte[] { 4, 2 });
        (await store.ListAsync("photos/", Ct).Select(i => i.Name).ToListAsync(Ct)).ShouldBe([name]);
    }
}
