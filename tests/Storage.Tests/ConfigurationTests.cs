using MambaSt.Batch.Storage.AzureBlobs;
using MambaSt.Batch.Storage.Local;
using MambaSt.Batch.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Storage.Tests;

public sealed class ConfigurationTests(LocalServices services)
{
    private const string Key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private static IHost Build(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddBlobStorage(builder.Configuration);
        return builder.Build();
    }

    [Fact]
    public async Task Two_credential_sources_stop_the_host_at_start_naming_the_settings_not_the_secrets()
    {
        using var host = Build(new()
        {
            ["Storage:ConnectionString"] = $"AccountName=a;AccountKey={Key}",
            ["Storage:SasUrl"] = "https://a.blob.core.windows.net/?sv=1&sig=SASSECRET",
        });

        var e = await Should.ThrowAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));

        e.Message.ShouldContain("ConnectionString, SasUrl");
        e.Message.ShouldNotContain(Key[..16]);
        e.Message.ShouldNotContain("SASSECRET");
    }

    [Theory]
    [InlineData("Storage:ConnectionString", "AccountName=a;AccountKey=not-base64!SECRETISH", "not base64")]
    [InlineData("Storage:ConnectionString", "AccountName=a", "no AccountKey")]
    [InlineData("Storage:SasUrl", "https://a.blob.core.windows.net/c?sv=1&sp=r", "no SAS query")]
    [InlineData("Storage:AccountUrl", "ftp://a", "AccountUrl is not an absolute http(s) URL")]
    [InlineData("Storage:SasToken", "sv=1&sig=SECRETISH", "SasToken needs Storage:AccountUrl")]
    [InlineData("Storage:Resilience:MaxRetryAttempts", "-1", "MaxRetryAttempts")]
    [InlineData("Storage:Resilience:BaseDelay", "00:05:00", "BaseDelay must not exceed")]
    [InlineData("Storage:BlockSizeBytes", "0", "BlockSizeBytes")]
    [InlineData("Storage:ApiVersion", "2099-01-01", "Storage:ApiVersion '2099-01-01' is not a Blob service version")]
    public async Task Bad_settings_stop_the_host_with_a_message_naming_the_setting(string setting, string value, string expected)
    {
        using var host = Build(new() { [setting] = value });

        var e = await Should.ThrowAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));

        e.Message.ShouldContain(expected);
        e.Message.ShouldNotContain("SECRETISH");
    }

    [Fact]
    public void Development_storage_shorthand_points_at_Azurite()
    {
        var account = BlobAccount.FromConnectionString("UseDevelopmentStorage=true");

        account.Endpoint.ShouldBe(new Uri("http://127.0.0.1:10000/devstoreaccount1"));
        account.AccountName.ShouldBe("devstoreaccount1");
        account.SharedKey.ShouldNotBeNull();
        account.ToString().ShouldNotContain(Key[..16]);
    }

    [Fact]
    public void Resolver_caches_one_store_per_container_and_resolves_local_paths_under_the_root()
    {
        var root = Directory.CreateTempSubdirectory("mambast-resolve-");
        try
        {
            using var host = Build(new()
            {
                ["Storage:ConnectionString"] = $"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={Key}",
                ["Storage:LocalRoot"] = root.FullName,
            });
            var resolver = host.Services.GetRequiredService<IStorageResolver>();

            var a = resolver.Resolve("az://inputs/a.jpg");
            var b = resolver.Resolve("https://acct.blob.core.windows.net/inputs/sub/b.jpg");
            var c = resolver.Resolve("az://out/c.jpg");
            var relative = resolver.Resolve("styles/s.png");
            var absolute = resolver.Resolve(Path.Combine(root.FullName, "styles", "t.png"));

            b.Store.ShouldBeSameAs(a.Store);
            b.Name.ShouldBe("sub/b.jpg");
            c.Store.ShouldNotBeSameAs(a.Store);
            ((AzureBlobStore)c.Store).Container.ShouldBe("out");
            relative.Store.ShouldBeOfType<LocalFolderStore>().Root.ShouldBe(root.FullName);
            absolute.Store.ShouldBeSameAs(relative.Store);
            absolute.Name.ShouldBe("styles/t.png");
            Should.Throw<StorageException>(() => resolver.Resolve("https://other.blob.core.windows.net/inputs/a.jpg")).Kind.ShouldBe(StorageErrorKind.NotConfigured);
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    [Fact]
    public void Without_an_account_az_locations_fail_with_NotConfigured()
    {
        using var host = Build(new());
        var resolver = host.Services.GetRequiredService<IStorageResolver>();

        var e = Should.Throw<StorageException>(() => resolver.Resolve("az://inputs/a.jpg"));

        e.Kind.ShouldBe(StorageErrorKind.NotConfigured);
        e.Message.ShouldContain("Storage:ConnectionString");
    }

    [Fact]
    [Trait(TestTraits.Category, TestTraits.Integration)]
    public async Task A_resolved_location_reaches_Azurite_through_DI()
    {
        using var host = Build(new() { ["Storage:ConnectionString"] = services.BlobConnectionString });
        await host.StartAsync(TestContext.Current.CancellationToken);
        var account = BlobAccount.FromConnectionString(services.BlobConnectionString);
        var container = TestStores.NewContainer();
        var resolver = host.Services.GetRequiredService<IStorageResolver>();

        var (store, name) = resolver.Resolve($"{account.Endpoint}/{container}/di/a.txt");
        await store.CreateContainerIfMissingAsync(TestContext.Current.CancellationToken);
        await store.PutAsync(name, new MemoryStream("hello"u8.ToArray()), null, TestContext.Current.CancellationToken);

        var again = resolver.Resolve($"az://{container}/di/a.txt");
        (await TestStores.ReadAllAsync(again.Store, again.Name)).ShouldBe("hello"u8.ToArray());
        await host.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public void The_store_cache_stays_bounded_when_every_location_carries_its_own_SAS()
    {
        var account = BlobAccount.FromConnectionString(services.BlobConnectionString);
        using var host = Build(new() { ["Storage:ConnectionString"] = services.BlobConnectionString });
        var resolver = (StorageResolver)host.Services.GetRequiredService<IStorageResolver>();
        string Location(int i) => $"{account.Endpoint}/inputs/{i}.jpg?sv=2025-01-05&sr=b&sp=r&se=2030-01-01T00%3A00%3A00Z&sig=job{i:D6}signature";

        var first = resolver.Resolve(Location(0)).Store;
        resolver.Resolve(Location(0)).Store.ShouldBeSameAs(first, "the same SAS reuses its store");
        for (var i = 1; i < 3 * StorageResolver.MaxCachedStores; i++) resolver.Resolve(Location(i));

        resolver.CachedStores.ShouldBeLessThanOrEqualTo(StorageResolver.MaxCachedStores);
        resolver.CachedStores.ShouldBeGreaterThan(0);
    }
}
