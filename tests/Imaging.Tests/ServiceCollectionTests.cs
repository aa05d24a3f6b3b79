using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Imaging.Tests;

public sealed class ServiceCollectionTests
{
    [Fact]
    public void AddImaging_binds_the_imaging_section()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Imaging:MaxPixels"] = "1234",
            ["Imaging:DecodeTimeout"] = "00:00:05",
        });
        builder.Services.AddImaging(builder.Configuration);
        using var host = builder.Build();

        var options = host.Services.GetRequiredService<IOptions<ImagingOptions>>().Value;
        var codec = host.Services.GetRequiredService<IImageCodec>();

        options.MaxPixels.ShouldBe(1234);
        options.DecodeTimeout.ShouldBe(TimeSpan.FromSeconds(5));
        codec.ShouldBeSameAs(host.Services.GetRequiredService<IImageCodec>());
        Should.Throw<ImageException>(() => codec.Decode(ImageCorpus.QuadrantFile(".png", 64, 32)))
            .Kind.ShouldBe(ImageErrorKind.TooManyPixels);
    }

    [Fact]
    public async Task A_bad_setting_stops_the_host_at_start_naming_the_setting()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Imaging:Concurrency"] = "0" });
        builder.Services.AddImaging(builder.Configuration);
        using var host = builder.Build();

        var error = await Should.ThrowAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));

        error.Message.ShouldContain("Concurrency");
    }
}
