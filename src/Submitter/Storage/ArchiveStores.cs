using System.Collections.Concurrent;

using MambaSt.Batch.Storage;

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MambaSt.Batch.Submitter.Storage;

/// <summary>
/// Opens the store for a location string: <c>az://container/prefix</c>, an https blob URL (a SAS in it is
/// used), or a local path. Blob credentials come from the Storage section (environment: Storage__ConnectionString,
/// Storage__SasUrl, Storage__AccountUrl), read at each <see cref="Open"/>: one resolver per distinct Storage
/// section, so a setting made after an earlier open (the CLI's --storage-connection, a second command in the
/// same process) takes effect.
/// </summary>
public static class ArchiveStores
{
    private static readonly ConcurrentDictionary<string, Lazy<IStorageResolver>> Resolvers = new(StringComparer.Ordinal);

    public static bool IsBlob(string location) =>
        location.StartsWith("az://", StringComparison.OrdinalIgnoreCase)
        || location.StartsWith("https://", StringComparison.OrdinalIgnoreCase)
        || location.StartsWith("http://", StringComparison.OrdinalIgnoreCase);

    public static IArchiveStore Open(string location)
    {
        if (string.IsNullOrWhiteSpace(location)) throw new UsageException("a storage location is empty");
        if (!IsBlob(location)) return new LocalArchiveStore(location);
        try
        {
            return new BlobArchiveStore(location, CurrentResolver().Resolve(location));
        }
        catch (StorageException ex) when (ex.Kind is StorageErrorKind.InvalidName or StorageErrorKind.NotConfigured or StorageErrorKind.NotAllowed)
        {
            throw new UsageException(ex.Message);
        }
    }

    private static IStorageResolver CurrentResolver()
    {
        var configuration = new ConfigurationBuilder().AddEnvironmentVariables().Build();
        var key = string.Join('\n', configuration.GetSection("Storage").AsEnumerable()
            .OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value));
        return Resolvers.GetOrAdd(key, _ => new Lazy<IStorageResolver>(() => CreateResolver(configuration))).Value;
    }

    private static IStorageResolver CreateResolver(IConfiguration configuration)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddBlobStorage(configuration);
        return services.BuildServiceProvider().GetRequiredService<IStorageResolver>();
    }
}
