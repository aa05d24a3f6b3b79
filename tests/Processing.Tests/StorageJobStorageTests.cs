using MambaSt.Batch.Contracts;
using MambaSt.Batch.Processing.Adapters;
using MambaSt.Batch.Storage;

namespace MambaSt.Batch.Processing.Tests;

/// <summary>The storage adapter's error mapping (real stores are tested in Storage.Tests and Worker.Tests).</summary>
public class StorageJobStorageTests
{
    [Fact]
    public async Task A_refusal_to_create_the_missing_output_container_is_a_permanent_storage_failure()
    {
        var store = new MissingContainerStore(new StorageException(StorageErrorKind.Forbidden, "403 AuthorizationPermissionMismatch on create container", 403));
        var storage = new StorageJobStorage(new SingleStore(store));

        var failure = await Should.ThrowAsync<JobFailedException>(() => storage.WriteOutputIfAbsentAsync(
            "az://out/a.png", new byte[] { 1, 2 }, "image/png", new Dictionary<string, string>(), TestContext.Current.CancellationToken));

        failure.Code.ShouldBe(StylizationErrorCode.StorageUnavailable);
        failure.Transient.ShouldBeFalse();
        failure.Message.ShouldContain("403");
        store.Creates.ShouldBe(1);
    }

    [Fact]
    public async Task A_missing_output_container_is_created_once_and_the_write_goes_through()
    {
        var store = new MissingContainerStore(createFailure: null);
        var storage = new StorageJobStorage(new SingleStore(store));

        (await storage.WriteOutputIfAbsentAsync("az://out/a.png", new byte[] { 1, 2 }, "image/png", new Dictionary<string, string>(),
            TestContext.Current.CancellationToken)).ShouldBeTrue();

        store.Creates.ShouldBe(1);
        store.Puts.ShouldBe(2);
    }

    [Fact]
    public async Task A_too_large_or_timed_out_read_of_a_sas_location_names_it_without_the_signature()
    {
        const string location = "https://acct.blob.core.windows.net/in/a.jpg?sv=2021-08-06&sr=b&sp=r&sig=SECRET123";
        var ct = TestContext.Current.CancellationToken;

        var tooLarge = await Should.ThrowAsync<JobFailedException>(() =>
            new StorageJobStorage(new SingleStore(new ReadableStore(() => new MemoryStream(new byte[100])))).ReadAsync(location, 10, ct));
        tooLarge.Code.ShouldBe(StylizationErrorCode.ImageTooLarge);
        tooLarge.Message.ShouldContain("acct.blob.core.windows.net/in/a.jpg");

        var timedOut = await Should.ThrowAsync<JobFailedException>(() =>
            new StorageJobStorage(new SingleStore(new ReadableStore(() => throw new TaskCanceledException("client timeout")))).ReadAsync(location, 10, ct));
        timedOut.Code.ShouldBe(StylizationErrorCode.Timeout);

        foreach (var failure in new[] { tooLarge, timedOut })
        {
            failure.Message.ShouldNotContain("SECRET123");
            failure.Message.ShouldContain("sig=<redacted>");
        }
    }

    private sealed class ReadableStore(Func<Stream> open) : IBlobStore
    {
        public string Description => "fake";

        public Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken) => Task.FromResult(open());

        public Task CreateContainerIfMissingAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<BlobProperties> PutAsync(string name, Stream content, BlobWriteOptions? options, CancellationToken cancellationToken) =>
            throw new NotSupportedException();

        public Task<BlobProperties> GetPropertiesAsync(string name, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<BlobPage> ListPageAsync(string? prefix, string? continuationToken, int? pageSize, CancellationToken cancellationToken) =>
            throw new NotSupportedException();

        public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken) => throw new NotSupportedException();
    }

    private sealed class SingleStore(IBlobStore store) : IStorageResolver
    {
        public StorageTarget Resolve(string location) => new(store, location[(location.LastIndexOf('/') + 1)..]);
    }

    /// <summary>Puts fail with NotFound until the container is created; creating it fails with createFailure when given.</summary>
    private sealed class MissingContainerStore(StorageException? createFailure) : IBlobStore
    {
        private bool _exists;

        public int Creates;

        public int Puts;

        public string Description => "fake";

        public Task CreateContainerIfMissingAsync(CancellationToken cancellationToken)
        {
            Creates++;
            if (createFailure is not null) throw createFailure;
            _exists = true;
            return Task.CompletedTask;
        }

        public Task<BlobProperties> PutAsync(string name, Stream content, BlobWriteOptions? options, CancellationToken cancellationToken)
        {
            Puts++;
            return _exists
                ? Task.FromResult(new BlobProperties { Name = name, Length = content.Length, ContentType = "image/png", Metadata = new Dictionary<string, string>() })
                : throw new StorageException(StorageErrorKind.NotFound, "404 ContainerNotFound", 404);
        }

        public Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<BlobProperties> GetPropertiesAsync(string name, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<BlobPage> ListPageAsync(string? prefix, string? continuationToken, int? pageSize, CancellationToken cancellationToken) =>
            throw new NotSupportedException();

        public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken) => throw new NotSupportedException();
    }
}
