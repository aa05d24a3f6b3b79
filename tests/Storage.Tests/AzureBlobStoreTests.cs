using MambaSt.Batch.Storage.AzureBlobs;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Storage.Tests;

[Trait(TestTraits.Category, TestTraits.Integration)]
public sealed class AzureBlobStoreTests(LocalServices services) : BlobStoreContract
{
    protected override async Task<IBlobStore> NewStoreAsync() => await TestStores.AzureAsync(services.BlobConnectionString);

    [Fact]
    public async Task Above_the_single_put_limit_blobs_go_up_in_staged_blocks()
    {
        var handler = new FaultingHandler();
        var options = TestStores.Options(o =>
        {
            o.SinglePutLimitBytes = 4 * 1024 * 1024;
            o.BlockSizeBytes = 1024 * 1024;
        });
        var store = await TestStores.AzureAsync(services.BlobConnectionString, options, handler);
        var data = TestStores.Bytes(9 * 1024 * 1024 + 123, 7);
        var metadata = new Dictionary<string, string> { ["mambast_job_id"] = "j-1" };

        await store.PutAsync("big/seekable.bin", new MemoryStream(data), new BlobWriteOptions { ContentType = "image/tiff", Metadata = metadata, IfAbsent = true }, Ct);
        await store.PutAsync("big/stream.bin", new ForwardOnlyStream(data), null, Ct);

        handler.Urls.Count(u => u.Contains("comp=block&", StringComparison.Ordinal)).ShouldBe(20);
        handler.Urls.Count(u => u.EndsWith("comp=blocklist", StringComparison.Ordinal)).ShouldBe(2);
        (await TestStores.ReadAllAsync(store, "big/seekable.bin")).ShouldBe(data);
        (await TestStores.ReadAllAsync(store, "big/stream.bin")).ShouldBe(data);
        var properties = await store.GetPropertiesAsync("big/seekable.bin", Ct);
        properties.ContentType.ShouldBe("image/tiff");
        properties.Metadata["mambast_job_id"].ShouldBe("j-1");
        var again = await Should.ThrowAsync<StorageException>(() =>
            store.PutAsync("big/seekable.bin", new MemoryStream(data), new BlobWriteOptions { IfAbsent = true }, Ct));
        again.Kind.ShouldBe(StorageErrorKind.AlreadyExists);
    }

    [Fact]
    public async Task A_forward_only_stream_under_the_limit_goes_in_one_put()
    {
        var handler = new FaultingHandler();
        var store = await TestStores.AzureAsync(services.BlobConnectionString, handler: handler);
        var data = TestStores.Bytes(300_000, 3);
        var before = handler.Requests;

        await store.PutAsync("s.bin", new ForwardOnlyStream(data), null, Ct);

        (handler.Requests - before).ShouldBe(1);
        (await TestStores.ReadAllAsync(store, "s.bin")).ShouldBe(data);
    }

    [Fact]
    public async Task AlreadyExists_and_NotFound_are_not_retried()
    {
        var handler = new FaultingHandler();
        var store = await TestStores.AzureAsync(services.BlobConnectionString, handler: handler);
        await store.PutAsync("once.bin", new MemoryStream([1]), new BlobWriteOptions { IfAbsent = true }, Ct);
        var before = handler.Requests;

        await Should.ThrowAsync<StorageException>(() => store.PutAsync("once.bin", new MemoryStream([2]), new BlobWriteOptions { IfAbsent = true }, Ct));
        var missing = await Should.ThrowAsync<StorageException>(() => store.OpenReadAsync("missing.bin", Ct));

        (handler.Requests - before).ShouldBe(2);
        store.RetryCount.ShouldBe(0);
        missing.Status.ShouldBe(404);
    }

    [Fact]
    public async Task A_wrong_key_is_Forbidden_and_the_key_is_not_in_the_message()
    {
        const string wrongKey = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQyNDI0MjQyNDI0MjQyNDI0MjQyNDI0MjQyNDI0Mg==";
        var good = BlobAccount.FromConnectionString(services.BlobConnectionString);
        var wrong = BlobAccount.WithSharedKey(good.Endpoint, good.AccountName, wrongKey);
        var logger = new CollectingLogger();
        var store = new AzureBlobStore(wrong, TestStores.NewContainer(), TestStores.Options(), logger);

        var e = await Should.ThrowAsync<StorageException>(() => store.CreateContainerIfMissingAsync(Ct));

        e.Kind.ShouldBe(StorageErrorKind.Forbidden);
        e.IsTransient.ShouldBeFalse();
        e.ToString().ShouldNotContain(wrongKey);
        e.ToString().ShouldNotContain(wrongKey[..20]);
        wrong.ToString().ShouldNotContain(wrongKey[..20]);
        store.RetryCount.ShouldBe(0);
    }

    [Fact]
    public async Task An_account_SAS_authenticates_and_the_signature_never_appears_in_messages_or_logs()
    {
        var account = BlobAccount.FromConnectionString(services.BlobConnectionString);
        var key = ConnectionKey(services.BlobConnectionString);
        var sas = AccountSas.Create(account.AccountName, key, DateTimeOffset.UtcNow.AddHours(1));
        var container = TestStores.NewContainer();
        var url = $"{account.Endpoint}/{container}/in/a.jpg?{sas}";
        var location = StorageLocation.Parse(url);
        var signature = sas.Split('&').Single(p => p.StartsWith("sig=", StringComparison.Ordinal))[4..];
        var logger = new CollectingLogger();
        var handler = new FaultingHandler { Override = r => r.Method == HttpMethod.Head ? new HttpResponseMessage(System.Net.HttpStatusCode.ServiceUnavailable) : null };
        var store = new AzureBlobStore(BlobAccount.WithSas(location.AccountEndpoint!, sas), location.Container!, TestStores.Options(), logger, handler.Transport());

        await store.CreateContainerIfMissingAsync(Ct);
        await store.PutAsync(location.Path, new MemoryStream([1, 2, 3]), null, Ct);
        var e = await Should.ThrowAsync<StorageException>(() => store.GetPropertiesAsync(location.Path, Ct));

        (await TestStores.ReadAllAsync(store, location.Path)).ShouldBe(new byte[] { 1, 2, 3 });
        e.Kind.ShouldBe(StorageErrorKind.Unavailable);
        e.IsTransient.ShouldBeTrue();
        logger.Lines.Count.ShouldBe(5);
        location.ToString().ShouldNotContain(signature);
        location.ToString().ShouldContain("<SAS redacted>");
        e.ToString().ShouldNotContain(signature);
        logger.Lines.ShouldAllBe(line => !line.Contains(signature) && !line.Contains("sig="));
        StorageLocation.Redact(url).ShouldNotContain(signature);
    }

    [Fact]
    public async Task Every_request_sends_the_pinned_service_version_with_a_key_or_a_SAS()
    {
        var versions = new System.Collections.Concurrent.ConcurrentBag<string>();
        HttpResponseMessage? Record(HttpRequestMessage request)
        {
            versions.Add(request.Headers.TryGetValues("x-ms-version", out var values) ? string.Join(',', values) : "(none)");
            return null;
        }

        var account = BlobAccount.FromConnectionString(services.BlobConnectionString);
        var sas = AccountSas.Create(account.AccountName, ConnectionKey(services.BlobConnectionString), DateTimeOffset.UtcNow.AddHours(1));
        var keyStore = await TestStores.AzureAsync(services.BlobConnectionString, handler: new FaultingHandler { Override = Record });
        var sasStore = new AzureBlobStore(BlobAccount.WithSas(account.Endpoint, sas), keyStore.Container, TestStores.Options(), null, new FaultingHandler { Override = Record }.Transport());

        await keyStore.PutAsync("v.bin", new MemoryStream([1]), null, Ct);
        (await TestStores.ReadAllAsync(sasStore, "v.bin")).ShouldBe(new byte[] { 1 });
        await sasStore.ListPageAsync(null, null, null, Ct);

        versions.Count.ShouldBeGreaterThanOrEqualTo(4);
        versions.ShouldAllBe(v => v == new StorageOptions().ApiVersion);
        new StorageOptions().ApiVersion.ShouldBe("2026-06-06");
    }

    private static string ConnectionKey(string connectionString) =>
        connectionString.Split(';').Single(p => p.StartsWith("AccountKey=", StringComparison.Ordinal))["AccountKey=".Length..];
}
