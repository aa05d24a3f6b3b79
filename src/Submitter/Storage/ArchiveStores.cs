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

    /// <summary>The bytes at a reference (a local path or a blob location), at most <paramref name="maxBytes"/>;
    /// null when it does not exist or is larger.</summary>
    public static async Task<byte[]?> ReadBytesAsync(string location, long maxBytes, CancellationToken cancellationToken)
    {
        Stream stream;
        if (!IsBlob(location))
        {
            if (!File.Exists(location)) return null;
            stream = File.OpenRead(location);
        }
        else
        {
            try
            {
                var target = CurrentResolver().Resolve(location);
                stream = await target.Store.OpenReadAsync(target.Name, cancellationToken);
            }
            catch (StorageException ex) when (ex.Kind is StorageErrorKind.NotFound)
            {
                return null;
            }
        }

        await using (stream)
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[81920];
            int read;
            while ((read = await stream.ReadAsync(chunk, cancellationToken)) > 0)
            {
                if (buffer.Length + read > maxBytes) return null;
                buffer.Write(chunk, 0, read);
            }

            return buffer.ToArray();
        }
    }

    private static IStorageResolver CurrentResolver()
    {
        var configuration = new ConfigurationBuilder().AddEnvironmentVariables().Build();
        var key = string.Join('\n', configuration.GetSection("Storage").AsEnumerable()
            .OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value));
        if (Resolvers.TryGetValue(key, out var known)) return known.Value;

        // Bounded: each distinct Storage section (a SAS URL set per command in a long-lived process) would otherwise
        // keep a resolver, and its stores, for the life of the process. Dropping them all is rare and cheap (a new
        // resolver and store per location).
        if (Resolvers.Count >= MaxResolvers) Resolvers.Clear();
        return Resolvers.GetOrAdd(key, _ => new Lazy<IStorageResolver>(() => CreateResolver(configuration))).Value;
    }

    /// <summary>Most Storage sections whose resolvers are kept at once.</summary>
    public const int MaxResolvers = 16;

    /// <summary>Resolvers kept now (tests).</summary>
    internal static int CachedResolvers => Resolvers.Count;

    private static IStorageResolver CreateResolver(IConfiguration configuration)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddBlobStorage(configuration);
        return services.BuildServiceProvider().GetRequiredService<IStorageResolver>();
    }
}
