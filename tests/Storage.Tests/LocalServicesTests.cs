using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Storage.Tests;

public sealed class LocalServicesTests(LocalServices services)
{
    [Theory]
    [InlineData("amqp://x", "UseDevelopmentStorage=true", true, null, ServicesPath.Environment)]
    [InlineData("amqp://x", "UseDevelopmentStorage=true", false, null, ServicesPath.Environment)]
    [InlineData(null, "UseDevelopmentStorage=true", true, null, ServicesPath.Testcontainers)]
    [InlineData("amqp://x", null, true, null, ServicesPath.Testcontainers)]
    [InlineData(null, null, true, "0", ServicesPath.Loopback)]
    [InlineData(null, null, false, null, ServicesPath.Loopback)]
    [InlineData("", "", false, null, ServicesPath.Loopback)]
    public void The_environment_overrides_both_paths_and_Docker_picks_Testcontainers(
        string? rabbit, string? blob, bool docker, string? testcontainersSwitch, ServicesPath expected)
    {
        LocalServices.Choose(rabbit, blob, docker, testcontainersSwitch).ShouldBe(expected);
    }

    [Fact]
    public void Without_a_Docker_engine_the_fixture_did_not_take_the_Testcontainers_path()
    {
        if (LocalServices.DockerAvailable())
        {
            Assert.Skip("a Docker engine answers here; this pins the fallback");
        }

        services.Path.ShouldNotBe(ServicesPath.Testcontainers);
        services.BlobConnectionString.ShouldContain("BlobEndpoint=http://127.0.0.1:");
    }
}
