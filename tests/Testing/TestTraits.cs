namespace MambaSt.Batch.Testing;

/// <summary>Trait names used to select suites: `dotnet test --filter Category!=Slow`.</summary>
public static class TestTraits
{
    public const string Category = "Category";

    /// <summary>Needs the real local services (RabbitMQ, Azurite).</summary>
    public const string Integration = "Integration";

    /// <summary>Runs for long or disturbs shared services (outages, restarts).</summary>
    public const string Chaos = "Chaos";

    /// <summary>Needs an NVIDIA GPU; skipped unless MAMBAST_GPU_TESTS=1.</summary>
    public const string Gpu = "Gpu";
}
