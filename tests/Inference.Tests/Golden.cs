using System.Collections.Concurrent;
using System.Text.Json;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Inference.Tests;

/// <summary>The PyTorch golden files under tests/fixtures/golden and one shared engine per scan variant.</summary>
public static class Golden
{
    private static readonly ConcurrentDictionary<string, Lazy<MambaStEngine>> Engines = new();

    public static string Root => Path.Combine(RepoPaths.Fixtures, "golden");

    public static JsonElement Manifest { get; } = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "manifest.json"))).RootElement;

    public static double Tolerance => Manifest.GetProperty("tolerance").GetProperty("stylized_abs").GetDouble();

    public static double TokenTolerance => Manifest.GetProperty("tolerance").GetProperty("style_tokens_abs").GetDouble();

    public static string ModelDirectory(string variant) =>
        Path.Combine(Root, Manifest.GetProperty("graphs").GetProperty(variant).GetProperty("folder").GetString()!);

    public static string[] CaseNames => Manifest.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("name").GetString()!).ToArray();

    public static JsonElement Case(string name) =>
        Manifest.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    public static Npy Load(string caseName, string tensor)
    {
        var c = Case(caseName);
        var file = c.GetProperty("files").GetProperty(tensor).GetProperty("file").GetString()!;
        return Npy.Read(Path.Combine(Root, c.GetProperty("folder").GetString()!, file));
    }

    public static InferenceOptions Options(string variant) => new() { ModelDirectory = ModelDirectory(variant), IntraOpThreads = 1 };

    /// <summary>Shared per variant for the whole run; sessions are thread-safe and never disposed before exit.</summary>
    public static MambaStEngine Engine(string variant) =>
        Engines.GetOrAdd(variant, v => new Lazy<MambaStEngine>(() => MambaStEngine.Create(Options(v)))).Value;

    public static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        a.Length.ShouldBe(b.Length);
        double max = 0;
        for (var i = 0; i < a.Length; i++)
        {
            var d = Math.Abs((double)a[i] - b[i]);
            if (double.IsNaN(d))
            {
                return double.PositiveInfinity;
            }

            max = Math.Max(max, d);
        }

        return max;
    }

    public static RgbPixels SmoothImage(int width, int height, int seed)
    {
        var rgb = new byte[3 * width * height];
        var random = new Random(seed);
        double fx = 0.05 + random.NextDouble() * 0.1, fy = 0.05 + random.NextDouble() * 0.1, phase = random.NextDouble() * 6;
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    var v = 0.5 + 0.45 * Math.Sin(fx * x * (c + 1) + fy * y + phase + c) + random.Next(-6, 7) / 255.0;
                    rgb[3 * (y * width + x) + c] = (byte)Math.Clamp((int)(v * 255), 0, 255);
                }
            }
        }

        return new RgbPixels(rgb, width, height);
    }
}
