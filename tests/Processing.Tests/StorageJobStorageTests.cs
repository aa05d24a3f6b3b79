using MambaSt.Batch.Contracts;
using MambaSt.Batch.Processing.Adapters;
using MambaSt.Batch.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

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

    [Theory]
    [InlineData("/etc/hostname", "Storage:AllowedLocalRoots")]
    [InlineData("file:///proc/self/environ", "Storage:AllowedLocalRoots")]
    [InlineData("https://evil.example.net/inputs/a.jpg?sv=1&sig=EVILSIG", "Storage:AllowedHosts")]
    [InlineData("http://10.1.2.3/devstoreaccount1/inputs/a.jpg?sig=EVILSIG", "https://")]
    public async Task A_job_naming_a_location_outside_the_allow_list_fails_at_once_as_InvalidRequest(string contentRef, string setting)
    {
        var root = Directory.CreateTempSubdirectory("mambast-worker-root-");
        try
        {
            Directory.CreateDirectory(Path.Combine(root.FullName, "styles"));
            File.WriteAllBytes(Path.Combine(root.FullName, "styles", "a.png"), FakeCodec.Image(8, 8));
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Storage:LocalRoot"] = root.FullName }).Build();
            using var provider = new ServiceCollection().AddBlobStorage(configuration).BuildServiceProvider();
            var storage = new StorageJobStorage(provider.GetRequiredService<IStorageResolver>());
            var pipeline = new StylizationPipeline(storage, new FakeCodec(), new FakeModel(), new StylizationMetrics(),
                Options.Create(new WorkerOptions { ImmediateRetries = 2, ImmediateRetryDelayMs = 1, WorkerId = "w" }), NullLogger<StylizationPipeline>.Instance);
            var job = new StylizeImage
            {
                JobId = Guid.NewGuid(),
                BatchId = "b",
                ContentRef = contentRef,
                StyleRef = "styles/a.png",
                OutputRef = "out/a.png",
                Options = new StylizeOptions(),
            };

            var failure = (await pipeline.RunAsync([job], TestContext.Current.CancellationToken))[0].Failure!;

            failure.Code.ShouldBe(StylizationErrorCode.InvalidRequest);
            failure.Transient.ShouldBeFalse();
            failure.Message.ShouldContain(setting);
            failure.Message.ShouldNotContain("EVILSIG");
        }
        finally
        {
            root.Delete(recursive: true);
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
