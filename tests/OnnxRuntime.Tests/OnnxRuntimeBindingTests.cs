using MambaSt.Batch.Testing;
using Microsoft.ML.OnnxRuntime;

namespace MambaSt.Batch.OnnxRuntime.Tests;

/// <summary>The official ONNX Runtime C# API, compiled from the npm package, drives the real native library.</summary>
public class OnnxRuntimeBindingTests
{
    private static readonly float[] W = [0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f];
    private static readonly float[] B = [0.1f, -0.2f];

    private static string ModelPath => Path.Combine(RepoPaths.Fixtures, "tiny", "affine.onnx");

    [Fact]
    public void Native_library_is_at_least_the_1_29_the_API_sources_target()
    {
        // 1.29.0 from npm by default; 1.31.x with -p:OnnxRuntimeFromNuGet=true on this feed.
        var version = Version.Parse(OrtEnv.Instance().GetVersionString());
        version.ShouldBeGreaterThanOrEqualTo(new Version(1, 29, 0));
        version.Major.ShouldBe(1);
    }

    [Fact]
    public void Runs_the_scripted_tiny_model_and_returns_the_expected_numbers()
    {
        using var session = new InferenceSession(ModelPath);
        session.InputMetadata.Keys.ShouldBe(["X"]);
        session.ModelMetadata.CustomMetadataMap["purpose"].ShouldBe("onnxruntime binding test");

        float[] x = [1f, 2f, 3f, -4f, 0.5f, 2f, 0f, 0f, 0f];
        using var input = OrtValue.CreateTensorValueFromMemory(x, [3, 3]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["X"], [input], ["Y"]);

        var y = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        outputs[0].GetTensorTypeAndShape().Shape.ShouldBe([3L, 2L]);
        y.Length.ShouldBe(6);
        for (var n = 0; n < 3; n++)
        {
            for (var j = 0; j < 2; j++)
            {
                var z = B[j];
                for (var k = 0; k < 3; k++) z += x[n * 3 + k] * W[k * 2 + j];
                y[n * 2 + j].ShouldBe(MathF.Max(z, 0f), 1e-6f);
            }
        }

        y[2].ShouldBe(0f); // second row, first column is negative before Relu
    }

    [Fact]
    public void A_corrupt_model_file_raises_an_OnnxRuntimeException_not_a_crash()
    {
        var path = Path.Combine(Path.GetTempPath(), $"corrupt-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, [0x08, 0x07, 0xFF, 0x12, 0x00, 0x42]);
        try
        {
            Should.Throw<OnnxRuntimeException>(() => new InferenceSession(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
