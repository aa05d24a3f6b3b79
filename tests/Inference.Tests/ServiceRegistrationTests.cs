using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Inference.Tests;

public class ServiceRegistrationTests
{
    private static IHost Build(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddInference(builder.Configuration);
        return builder.Build();
    }

    [Fact]
    public async Task A_valid_section_starts_and_resolves_one_engine_for_both_roles()
    {
        using var host = Build(new()
        {
            ["Inference:ModelDirectory"] = Golden.ModelDirectory("parallel"),
            ["Inference:IntraOpThreads"] = "1",
            ["Inference:StyleCacheBytes"] = "1048576",
        });
        await host.StartAsync(TestContext.Current.CancellationToken);

        var encoder = host.Services.GetRequiredService<IStyleEncoder>();
        host.Services.GetRequiredService<IStylizer>().ShouldBeSameAs(encoder);
        encoder.Model.ScanVariant.ShouldBe("parallel");
        host.Services.GetRequiredService<StyleEncodingCache>().CapacityBytes.ShouldBe(1048576);
        host.Services.GetRequiredService<TiledStylizer>().ShouldNotBeNull();
        await host.StopAsync(TestContext.Current.CancellationToken);
    }

    [Theory]
    [InlineData("ModelDirectory", "/nonexistent/model", "style_encoder.onnx")]
    [InlineData("MaxSide", "8", "MaxSide")]
    [InlineData("TileSize", "100", "TileSize")]
    [InlineData("TileOverlap", "400", "TileOverlap")]
    public async Task A_bad_setting_stops_the_host_at_start_naming_the_setting(string key, string value, string named)
    {
        var settings = new Dictionary<string, string?> { ["Inference:ModelDirectory"] = Golden.ModelDirectory("sequential") };
        settings[$"Inference:{key}"] = value;
        using var host = Build(settings);

        var ex = await Should.ThrowAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));

        ex.Message.ShouldContain(named);
    }
}
