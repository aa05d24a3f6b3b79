using System.Text.Json;
using MambaSt.Batch.Testing;
using MassTransit.Serialization;

namespace MambaSt.Batch.Contracts.Tests;

/// <summary>The compatibility policy (src/Contracts/README.md): JSON written by release 1.0.0 still reads.
/// contracts/examples/1.0.0 is frozen: never edit it; add a folder per release instead.</summary>
public class PreviousReleaseTests
{
    private static string Example(string release, string name) =>
        File.ReadAllText(Path.Combine(RepoPaths.Root, "contracts", "examples", release, name + ".json"));

    [Fact]
    public void StylizeImage_from_1_0_0_deserializes()
    {
        var msg = JsonSerializer.Deserialize<StylizeImage>(Example("1.0.0", nameof(StylizeImage)), SystemTextJsonMessageSerializer.Options)!;
        msg.ShouldBe(ContractSerializationTests.SampleCommand() with { SubmittedAt = DateTimeOffset.Parse("2026-11-25T01:02:03Z") });
    }

    [Fact]
    public void ImageStylized_from_1_0_0_deserializes()
    {
        var msg = JsonSerializer.Deserialize<ImageStylized>(Example("1.0.0", nameof(ImageStylized)), SystemTextJsonMessageSerializer.Options)!;
        msg.ShouldBe(Examples.Stylized());
    }

    [Fact]
    public void ImageStylizationFailed_from_1_0_0_deserializes()
    {
        var msg = JsonSerializer.Deserialize<ImageStylizationFailed>(Example("1.0.0", nameof(ImageStylizationFailed)), SystemTextJsonMessageSerializer.Options)!;
        msg.ShouldBe(Examples.Failed());
    }

    [Theory]
    [InlineData(nameof(StylizeImage))]
    [InlineData(nameof(ImageStylized))]
    [InlineData(nameof(ImageStylizationFailed))]
    public async Task The_1_0_0_examples_validate_against_todays_schemas(string name)
    {
        var (exit, output) = await SchemaValidator.ValidateAsync(name, [Example("1.0.0", name)], TestContext.Current.CancellationToken);
        exit.ShouldBe(0, output);
    }
}

internal static class Examples
{
    public static ImageStylized Stylized() => new()
    {
        JobId = Guid.Parse("6f1c1f2e-8d7a-4c55-9a51-2b8f3c4d5e6f"),
        BatchId = "night-2026-11-25",
        OutputRef = "az://stylized/2019/IMG_0001.jpg",
        Width = 768,
        Height = 512,
        OutputBytes = 123_456,
        Timings = new StageTimings { FetchMs = 1.5, DecodeMs = 2, StyleEncodeMs = 0, InferenceMs = 120.25, EncodeMs = 3, WriteMs = 4, TotalMs = 130.75 },
        ModelId = "mambast-small",
        ModelVersion = "0.5.0",
        WorkerId = "worker-a",
        CorrelationId = Guid.Parse("0a0b0c0d-0000-4000-8000-000000000001"),
        CompletedAt = DateTimeOffset.Parse("2026-11-25T03:04:05Z"),
    };

    public static ImageStylizationFailed Failed() => new()
    {
        JobId = Guid.Parse("7a2d3e4f-1111-4c55-9a51-2b8f3c4d5e70"),
        BatchId = "night-2026-11-25",
        ErrorCode = StylizationErrorCode.InvalidImage,
        Message = "decode failed: not a known image format",
        AttemptCount = 1,
        Transient = false,
        WorkerId = "worker-a",
        FailedAt = DateTimeOffset.Parse("2026-11-25T03:04:06Z"),
    };
}
