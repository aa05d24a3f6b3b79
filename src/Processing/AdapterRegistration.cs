using MambaSt.Batch.Imaging;
using MambaSt.Batch.Inference;
using MambaSt.Batch.Processing.Adapters;
using MambaSt.Batch.Processing.Ports;
using MambaSt.Batch.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace MambaSt.Batch.Processing;

public static class AdapterRegistration
{
    /// <summary>Imaging (libvips), storage (Azure Blob / local folders) and inference (ONNX Runtime) behind the pipeline's ports.</summary>
    public static IServiceCollection AddStylizationAdapters(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddImaging(configuration);
        services.AddBlobStorage(configuration);
        services.AddInference(configuration);
        services.TryAddSingleton<IJobStorage, StorageJobStorage>();
        services.TryAddSingleton<IJobImageCodec, ImagingJobCodec>();
        services.TryAddSingleton<IStyleTransfer, EngineStyleTransfer>();
        return services;
    }
}
