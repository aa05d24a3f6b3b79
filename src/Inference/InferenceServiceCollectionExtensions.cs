using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Inference;

public static class InferenceServiceCollectionExtensions
{
    /// <summary>Registers <see cref="InferenceOptions"/> (section "Inference", validated at start), one
    /// <see cref="MambaStEngine"/> as <see cref="IStyleEncoder"/> and <see cref="IStylizer"/>, a
    /// <see cref="StyleEncodingCache"/> and a <see cref="TiledStylizer"/>, all singletons.</summary>
    public static IServiceCollection AddInference(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<InferenceOptions>()
            .Bind(configuration.GetSection(InferenceOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton(sp => MambaStEngine.Create(
            sp.GetRequiredService<IOptions<InferenceOptions>>().Value, sp.GetService<ILogger<MambaStEngine>>()));
        services.AddSingleton<IStyleEncoder>(sp => sp.GetRequiredService<MambaStEngine>());
        services.AddSingleton<IStylizer>(sp => sp.GetRequiredService<MambaStEngine>());
        services.AddSingleton(sp => new StyleEncodingCache(sp.GetRequiredService<IOptions<InferenceOptions>>().Value.StyleCacheBytes));
        services.AddSingleton(sp => new TiledStylizer(sp.GetRequiredService<IStylizer>(), sp.GetRequiredService<IOptions<InferenceOptions>>().Value));
        return services;
    }
}
