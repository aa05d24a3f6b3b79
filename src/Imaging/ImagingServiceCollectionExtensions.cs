using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MambaSt.Batch.Imaging;

public static class ImagingServiceCollectionExtensions
{
    /// <summary>Registers <see cref="IImageCodec"/> as a singleton with <see cref="ImagingOptions"/> bound
    /// from the "Imaging" section and validated at start.</summary>
    public static IServiceCollection AddImaging(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ImagingOptions>()
            .Bind(configuration.GetSection(ImagingOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<IImageCodec, VipsImageCodec>();
        return services;
    }
}
