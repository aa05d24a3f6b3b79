using System.Text.Json;
using System.Text.Json.Nodes;
using MambaSt.Batch.Contracts;
using MassTransit;
using MassTransit.Serialization;
using MassTransit.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace MambaSt.Batch.Contracts.Tests;

public class ContractSerializationTests
{
    private static readonly JsonSerializerOptions Options = SystemTextJsonMessageSerializer.Options;

    internal static StylizeImage SampleCommand() => new()
    {
        JobId = Guid.Parse("6f1c1f2e-8d7a-4c55-9a51-2b8f3c4d5e6f"),
        BatchId = "night-2026-11-25",
        ContentRef = "az://photos/2019/IMG_0001.jpg",
        StyleRef = "az://styles/starry-night.jpg",
        OutputRef = "az://stylized/2019/IMG_0001.jpg",
        Options = new StylizeOptions { MaxSide = 768, Format = OutputFormat.Webp, Quality = 85, Seed = -42, Strength = 0.75f, PreserveColor = true },
        CorrelationId = Guid.Parse("0a0b0c0d-0000-4000-8000-000000000001"),
    };

    [Fact]
    public void StylizeImage_round_trips_through_the_MassTransit_serializer()
    {
        var original = SampleCommand();
        var json = JsonSerializer.Serialize(original, Options);
        var back = JsonSerializer.Deserialize<StylizeImage>(json, Options);
        back.ShouldBe(original);
    }

    [Fact]
    public void ImageStylized_round_trips_with_timings()
    {
        var original = new ImageStylized
        {
            JobId = Guid.NewGuid(),
            BatchId = "b",
            OutputRef = "/tmp/out.jpg",
            Width = 640,
            Height = 480,
            OutputBytes = 123_456,
            Timings = new StageTimings { FetchMs = 1.5, DecodeMs = 2, StyleEncodeMs = 0, InferenceMs = 120.25, EncodeMs = 3, WriteMs = 4, TotalMs = 130.75 },
            ModelId = "mambast-small",
            ModelVersion = "1.0.0",
            WorkerId = "worker-a",
            Reused = true,
            CompletedAt = DateTimeOffset.Parse("2026-11-25T03:04:05Z"),
        };
        var back = JsonSerializer.Deserialize<ImageStylized>(JsonSerializer.Serialize(original, Options), Options);
        back.ShouldBe(original);
    }

    [Theory]
    [InlineData(StylizationErrorCode.InvalidImage)]
    [InlineData(StylizationErrorCode.Canceled)]
    public void Failure_event_round_trips_every_error_code(StylizationErrorCode code)
    {
        var original = new ImageStylizationFailed
        {
            JobId = Guid.NewGuid(), BatchId = "b", ErrorCode = code, Message = "decode failed: truncated JPEG",
            AttemptCount = 3, Transient = false, WorkerId = "w1",
        };
        var back = JsonSerializer.Deserialize<ImageStylizationFailed>(JsonSerializer.Serialize(original, Options), Options);
        back.ShouldBe(original);
    }

    [Fact]
    public void A_message_with_unknown_extra_fields_still_deserializes()
    {
        var node = JsonNode.Parse(JsonSerializer.Serialize(SampleCommand(), Options))!.AsObject();
        node["addedInVersion2"] = "something new";
        node["priority"] = 7;
        ((JsonObject)node["options"]!)["tileOverlap"] = 32;

        var back = JsonSerializer.Deserialize<StylizeImage>(node.ToJsonString(), Options);
        back.ShouldBe(SampleCommand());
    }

    [Fact]
    public void Missing_optional_options_take_their_defaults()
    {
        const string json = """{"jobId":"6f1c1f2e-8d7a-4c55-9a51-2b8f3c4d5e6f","batchId":"b","contentRef":"c","styleRef":"s","outputRef":"o","options":{}}""";
        var msg = JsonSerializer.Deserialize<StylizeImage>(json, Options)!;
        msg.Options.ShouldBe(new StylizeOptions());
        msg.Options.Strength.ShouldBe(1.0f);
        msg.Options.MaxSide.ShouldBe(StylizeOptions.DefaultMaxSide);
    }

    [Fact]
    public async Task StylizeImage_round_trips_through_a_bus_with_serialization()
    {
        await using var provider = new ServiceCollection()
            .AddMassTransitTestHarness(x => x.AddConsumer<EchoConsumer>())
            .BuildServiceProvider(true);
        var harness = provider.GetTestHarness();
        await harness.Start().WaitAsync(TestContext.Current.CancellationToken);

        var sent = SampleCommand();
        await harness.Bus.Publish(sent, TestContext.Current.CancellationToken);

        (await harness.Consumed.Any<StylizeImage>(TestContext.Current.CancellationToken)).ShouldBeTrue();
        var received = harness.Consumed.Select<StylizeImage>(TestContext.Current.CancellationToken).Single().Context.Message;
        received.ShouldBe(sent);
        received.ShouldNotBeSameAs(sent);
    }

    private sealed class EchoConsumer : IConsumer<StylizeImage>
    {
        public Task Consume(ConsumeContext<StylizeImage> context) => Task.CompletedTask;
    }
}
