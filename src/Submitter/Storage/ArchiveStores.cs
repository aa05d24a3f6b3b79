using MambaSt.Batch.Storage;

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MambaSt.Batch.Submitter.Storage;

/// <summary>
/// Opens the store for a location string: <c>az://container/prefix</c>, an https blob URL (a SAS in it is
/// used), or a local path. Blob credentials come from the Storage section (environment: Storage__ConnectionString,
/// Storage__SasUrl, Storage__AccountUrl).
/// </summary>
public static class ArchiveStores
{
    private static readonly Lazy<IStorageResolver> Resolver = new(CreateResolver);

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
            return new BlobArchiveStore(location, Resolver.Value.Resolve(location));
        }
        catch (StorageException ex) when (ex.Kind is StorageErrorKind.InvalidName or StorageErrorKind.NotConfigured)
        {
            throw new UsageException(ex.Message);
        }
    }

    private static IStorageResolver CreateResolver()
    {
        var configuration = new ConfigurationBuilder().AddEnvironmentVariables().Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddBlobStorage(configuration);
        return services.BuildServiceProvider().GetRequiredService<IStorageResolver>();
    }
}
