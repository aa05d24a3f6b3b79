using MambaSt.Batch.Storage.Local;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Storage.Tests;

/// <summary>What a message may name (issue 22): every refusal happens in <see cref="IStorageResolver.Resolve"/>,
/// which builds no store and so sends nothing anywhere.</summary>
public sealed class LocationPolicyTests : IDisposable
{
    private const string Key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    private const string Account = $"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={Key}";

    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("mambast-policy-root-");
    private readonly DirectoryInfo _outside = Directory.CreateTempSubdirectory("mambast-policy-outside-");
    private readonly List<IHost> _hosts = [];

    public void Dispose()
    {
        foreach (var host in _hosts) host.Dispose();
        _root.Delete(recursive: true);
        _outside.Delete(recursive: true);
    }

    private IStorageResolver Resolver(Dictionary<string, string?>? extra = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        var settings = new Dictionary<string, string?> { ["Storage:ConnectionString"] = Account, ["Storage:LocalRoot"] = _root.FullName };
        foreach (var (k, v) in extra ?? []) settings[k] = v;
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddBlobStorage(builder.Configuration);
        var host = builder.Build();
        _hosts.Add(host);
        return host.Services.GetRequiredService<IStorageResolver>();
    }

    private static StorageException Refused(IStorageResolver resolver, string location, string setting)
    {
        var e = Should.Throw<StorageException>(() => resolver.Resolve(location));
        e.Kind.ShouldBe(StorageErrorKind.NotAllowed);
        e.IsTransient.ShouldBeFalse();
        e.ErrorCode.ShouldBe(Contracts.StylizationErrorCode.InvalidRequest);
        e.Message.ShouldContain(setting);
        return e;
    }

    [Fact]
    public void An_absolute_path_outside_the_local_root_is_refused()
    {
        var e = Refused(Resolver(), "/etc/hostname", "Storage:AllowedLocalRoots");

        e.Message.ShouldContain("/etc/hostname");
    }

    [Fact]
    public void A_file_uri_into_proc_is_refused()
    {
        Refused(Resolver(), "file:///proc/self/environ", "Storage:AllowedLocalRoots");
    }

    [Fact]
    public void Paths_under_the_root_resolve_including_outputs_that_do_not_exist_yet()
    {
        var resolver = Resolver();
        File.WriteAllText(Path.Combine(_root.FullName, "a.jpg"), "x");

        resolver.Resolve(Path.Combine(_root.FullName, "a.jpg")).Name.ShouldBe("a.jpg");
        resolver.Resolve($"file://{_root.FullName}/a.jpg").Name.ShouldBe("a.jpg");
        resolver.Resolve("out/new/b.png").Name.ShouldBe("out/new/b.png");
        resolver.Resolve(Path.Combine(_root.FullName, "out", "new", "c.png")).Store.ShouldBeOfType<LocalFolderStore>();
    }

    [Fact]
    public void A_symlink_that_leaves_the_root_is_refused_at_every_level()
    {
        File.WriteAllText(Path.Combine(_outside.FullName, "secret.txt"), "secret");
        Directory.CreateSymbolicLink(Path.Combine(_root.FullName, "escape"), _outside.FullName);
        File.CreateSymbolicLink(Path.Combine(_root.FullName, "secret.jpg"), Path.Combine(_outside.FullName, "secret.txt"));
        // Two levels: an in-root link to an in-root folder that holds the escaping link.
        Directory.CreateDirectory(Path.Combine(_root.FullName, "inner"));
        Directory.CreateSymbolicLink(Path.Combine(_root.FullName, "inner", "up"), "../escape");
        Directory.CreateSymbolicLink(Path.Combine(_root.FullName, "hop"), "inner");
        var resolver = Resolver();

        Refused(resolver, "escape/secret.txt", "Storage:AllowedLocalRoots").Message.ShouldContain("symbolic link");
        Refused(resolver, Path.Combine(_root.FullName, "escape", "secret.txt"), "Storage:AllowedLocalRoots");
        Refused(resolver, "secret.jpg", "Storage:AllowedLocalRoots");
        Refused(resolver, "hop/up/secret.txt", "Storage:AllowedLocalRoots");
        Refused(resolver, "escape/new-output.png", "Storage:AllowedLocalRoots");
    }

    [Fact]
    public void A_symlink_that_stays_inside_the_root_is_allowed()
    {
        Directory.CreateDirectory(Path.Combine(_root.FullName, "real"));
        Directory.CreateSymbolicLink(Path.Combine(_root.FullName, "alias"), Path.Combine(_root.FullName, "real"));

        Resolver().Resolve("alias/a.jpg").Name.ShouldBe("alias/a.jpg");
    }

    [Fact]
    public void AllowedLocalRoots_replaces_the_default_root()
    {
        var resolver = Resolver(new() { ["Storage:AllowedLocalRoots:0"] = _outside.FullName });

        resolver.Resolve(Path.Combine(_outside.FullName, "a.jpg")).Name.ShouldBe("a.jpg");
        Refused(resolver, Path.Combine(_root.FullName, "a.jpg"), "Storage:AllowedLocalRoots");
    }

    [Fact]
    public void A_sas_url_on_an_unknown_host_is_refused_without_showing_the_signature()
    {
        var e = Refused(Resolver(), "https://evil.example.net/inputs/a.jpg?sv=2021-08-06&sp=r&sig=TOPSECRETSIG", "Storage:AllowedHosts");

        e.Message.ShouldContain("evil.example.net");
        e.Message.ShouldNotContain("TOPSECRETSIG");
    }

    [Fact]
    public void Plain_http_to_a_non_loopback_host_is_refused_even_when_listed()
    {
        var resolver = Resolver(new() { ["Storage:AllowedHosts:0"] = "10.1.2.3" });

        var e = Refused(resolver, "http://10.1.2.3/devstoreaccount1/inputs/a.jpg?sv=1&sig=SECRET2", "https://");

        e.Message.ShouldContain("loopback");
        e.Message.ShouldNotContain("SECRET2");
    }

    [Fact]
    public void A_loopback_emulator_over_http_must_be_listed_explicitly()
    {
        const string url = "http://127.0.0.1:10000/devstoreaccount1/inputs/a.jpg?sv=1&sig=S";

        Refused(Resolver(), url, "Storage:AllowedHosts");
        var resolver = Resolver(new()
        {
            ["Storage:AllowedHosts:0"] = "127.0.0.1:10000",
            ["Storage:AllowedAccounts:0"] = "devstoreaccount1/*",
        });
        resolver.Resolve(url).Name.ShouldBe("a.jpg");
    }

    [Fact]
    public void A_container_outside_AllowedAccounts_is_refused_on_the_configured_account()
    {
        var resolver = Resolver(new()
        {
            ["Storage:AllowedAccounts:0"] = "acct/inputs",
            ["Storage:AllowedAccounts:1"] = "acct/out-*",
        });

        resolver.Resolve("az://inputs/a.jpg").Name.ShouldBe("a.jpg");
        resolver.Resolve("az://out-7/a.jpg").Name.ShouldBe("a.jpg");
        Refused(resolver, "az://secrets/keys.jpg", "Storage:AllowedAccounts").Message.ShouldContain("acct/secrets");
        Refused(resolver, "https://acct.blob.core.windows.net/secrets/keys.jpg", "Storage:AllowedAccounts");
    }

    [Fact]
    public void A_sas_url_for_another_account_needs_both_its_host_and_its_account_allowed()
    {
        const string url = "https://other.blob.core.windows.net/inputs/a.jpg?sv=1&sp=r&sig=S";

        Refused(Resolver(new() { ["Storage:AllowedHosts:0"] = "*.blob.core.windows.net" }), url, "Storage:AllowedAccounts")
            .Message.ShouldContain("other/inputs");
        Resolver(new()
        {
            ["Storage:AllowedHosts:0"] = "*.blob.core.windows.net",
            ["Storage:AllowedAccounts:0"] = "other/inputs",
        }).Resolve(url).Name.ShouldBe("a.jpg");
    }

    [Fact]
    public void By_default_the_configured_account_serves_any_of_its_containers()
    {
        var resolver = Resolver();

        resolver.Resolve("az://anything/a.jpg").Name.ShouldBe("a.jpg");
        resolver.Resolve("https://acct.blob.core.windows.net/inputs/a.jpg?sv=1&sig=S").Name.ShouldBe("a.jpg");
    }

    [Theory]
    [InlineData("Storage:AccountUrl", "http://acct.blob.core.windows.net")]
    [InlineData("Storage:SasUrl", "http://acct.blob.core.windows.net/?sv=1&sig=S")]
    [InlineData("Storage:ConnectionString", $"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={Key}")]
    [InlineData("Storage:ConnectionString", $"AccountName=acct;AccountKey={Key};BlobEndpoint=http://storage.internal:10000/acct")]
    public async Task A_plain_http_azure_endpoint_stops_the_host_at_start(string setting, string value)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { [setting] = value });
        builder.Services.AddBlobStorage(builder.Configuration);
        using var host = builder.Build();

        var e = await Should.ThrowAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));

        e.Message.ShouldContain("https");
        e.Message.ShouldNotContain(Key[..16]);
    }

    [Theory]
    [InlineData("UseDevelopmentStorage=true")]
    [InlineData($"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={Key};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")]
    [InlineData($"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={Key};BlobEndpoint=http://azurite:10000/devstoreaccount1;")]
    public async Task The_emulator_over_http_is_a_valid_setting(string connectionString)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Storage:ConnectionString"] = connectionString });
        builder.Services.AddBlobStorage(builder.Configuration);
        using var host = builder.Build();

        await host.StartAsync(TestContext.Current.CancellationToken);
        await host.StopAsync(TestContext.Current.CancellationToken);
    }
}
