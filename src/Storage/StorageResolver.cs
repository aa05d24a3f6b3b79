using System.Security.Cryptography;
using System.Text;
using Azure.Core;
using MambaSt.Batch.Storage.AzureBlobs;
using MambaSt.Batch.Storage.Local;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Storage;

/// <summary>A location string resolved to the store that holds it and the blob name (or prefix) inside.</summary>
public sealed record StorageTarget(IBlobStore Store, string Name);

/// <summary>Turns location strings from messages (ContentRef, StyleRef, OutputRef) into stores.</summary>
public interface IStorageResolver
{
    /// <summary>Throws <see cref="StorageException"/> (InvalidName, NotConfigured) for a location it cannot serve.</summary>
    StorageTarget Resolve(string location);
}

/// <summary>Caches one store per account/container (and SAS) or local root, at most <see cref="MaxCachedStores"/>
/// of them, each dropped after <see cref="CacheIdle"/> unused: a worker whose jobs each carry their own SAS would
/// otherwise keep a store per job for its lifetime. A store that does not fit is used once, not cached. Thread-safe.</summary>
internal sealed class StorageResolver(IOptions<StorageOptions> options, IServiceProvider services, ILoggerFactory? loggerFactory = null) : IStorageResolver, IDisposable
{
    internal const int MaxCachedStores = 256;
    internal static readonly TimeSpan CacheIdle = TimeSpan.FromMinutes(10);

    private readonly MemoryCache _stores = new(new MemoryCacheOptions { SizeLimit = MaxCachedStores });
    private readonly Lazy<BlobAccount?> _defaultAccount = new(() => DefaultAccount(options.Value, services));
    private readonly Lazy<LocationPolicy> _policy = new(() => new LocationPolicy(services.GetRequiredService<IOptions<LocationPolicyOptions>>().Value, options.Value.LocalRoot));

    public StorageTarget Resolve(string location)
    {
        var parsed = StorageLocation.Parse(location);
        _policy.Value.Check(parsed, () => _defaultAccount.Value?.Endpoint);
        return parsed.Kind == StorageLocationKind.Local ? ResolveLocal(parsed) : ResolveAzure(parsed);
    }

    private StorageTarget ResolveAzure(StorageLocation location)
    {
        BlobAccount account;
        if (location.AccountEndpoint is null)
        {
            account = _defaultAccount.Value ?? throw new StorageException(
                StorageErrorKind.NotConfigured,
                $"'{location}' needs an Azure account: set Storage:ConnectionString, Storage:SasUrl or Storage:AccountUrl.");
        }
        else if (location.Sas is { } sas)
        {
            account = BlobAccount.WithSas(location.AccountEndpoint, sas);
        }
        else if (_defaultAccount.Value is { } configured && configured.Endpoint == location.AccountEndpoint)
        {
            account = configured;
        }
        else
        {
            throw new StorageException(
                StorageErrorKind.NotConfigured,
                $"'{location}' is on {location.AccountEndpoint}, which has no credential: use a SAS URL or configure that account in Storage.");
        }

        var key = $"az|{account.Endpoint}|{location.Container}|{(account.Sas is null ? "" : Hash(account.Sas.Signature))}";
        var store = Cached(key, () => new AzureBlobStore(
            account, location.Container!, options.Value, (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<AzureBlobStore>()));
        return new StorageTarget(store, location.Path);
    }

    private StorageTarget ResolveLocal(StorageLocation location)
    {
        var configuredRoot = Path.GetFullPath(string.IsNullOrWhiteSpace(options.Value.LocalRoot) ? Environment.CurrentDirectory : options.Value.LocalRoot);
        string root, name;
        if (!Path.IsPathRooted(location.Path))
        {
            (root, name) = (configuredRoot, location.Path);
        }
        else
        {
            var full = Path.GetFullPath(location.Path);
            if (full.StartsWith(configuredRoot + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                (root, name) = (configuredRoot, Path.GetRelativePath(configuredRoot, full).Replace(Path.DirectorySeparatorChar, '/'));
            }
            else if (location.Path.EndsWith('/'))
            {
                (root, name) = (full, "");
            }
            else
            {
                (root, name) = (Path.GetDirectoryName(full) ?? full, Path.GetFileName(full));
            }
        }

        if (location.Path.EndsWith('/') && name.Length > 0 && !name.EndsWith('/')) name += "/";
        var store = Cached($"local|{root}", () => new LocalFolderStore(root, options.Value));
        return new StorageTarget(store, name);
    }

    public void Dispose() => _stores.Dispose();

    /// <summary>Stores in the cache now (expired or compacted ones are gone).</summary>
    internal int CachedStores => _stores.Count;

    private IBlobStore Cached(string key, Func<IBlobStore> create) =>
        _stores.GetOrCreate(key, entry =>
        {
            entry.Size = 1;
            entry.SlidingExpiration = CacheIdle;
            return create();
        })!;

    private static BlobAccount? DefaultAccount(StorageOptions options, IServiceProvider services)
    {
        if (!string.IsNullOrWhiteSpace(options.ConnectionString)) return BlobAccount.FromConnectionString(options.ConnectionString);
        if (!string.IsNullOrWhiteSpace(options.SasUrl)) return BlobAccount.FromSasUrl(options.SasUrl);
        if (string.IsNullOrWhiteSpace(options.AccountUrl)) return null;
        var endpoint = BlobAccount.ParseAccountUrl(options.AccountUrl, nameof(StorageOptions.AccountUrl));
        return string.IsNullOrWhiteSpace(options.SasToken)
            ? BlobAccount.WithToken(endpoint, services.GetRequiredService<TokenCredential>())
            : BlobAccount.WithSas(endpoint, options.SasToken);
    }

    private static string Hash(string secret) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(secret)))[..16];
}
