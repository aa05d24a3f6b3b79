using Azure.Core;
using Azure.Identity;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Storage;

public static class StorageServiceCollectionExtensions
{
    /// <summary>Binds and validates section "Storage" at start and registers <see cref="IStorageResolver"/>.
    /// A <see cref="TokenCredential"/> registered before this call replaces DefaultAzureCredential.</summary>
    public static IServiceCollection AddBlobStorage(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<StorageOptions>()
            .Bind(configuration.GetSection(StorageOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StorageOptions>, SecureEndpointValidator>());
        services.AddOptions<LocationPolicyOptions>().Bind(configuration.GetSection(StorageOptions.SectionName));
        services.TryAddSingleton<TokenCredential>(_ => new DefaultAzureCredential());
        services.TryAddSingleton<IStorageResolver, StorageResolver>();
        return services;
    }
}
