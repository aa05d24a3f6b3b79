using System.Diagnostics;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Inference.Tests;

/// <summary>The tiny model exported with <c>--scan fused</c> (custom op mambast::SelectiveScan) runs through the engine's
/// custom-op hook with native/ libmambast_ops.so and reproduces the PyTorch golden tensors.</summary>
public class FusedScanTests
{
    private static readonly Lazy<(string? ModelDirectory, string? Library, string? Missing)> Prepared = new(Prepare);

    public static TheoryData<string> Cases() => new(Golden.CaseNames);

    /// <summary>Library: MAMBAST_OPS_LIB, else artifacts/native, built by scripts/build-native.sh when missing. Model: exported by the Python exporter into a temporary folder (tiny, seed 7 = golden weights).</summary>
    private static (string?, string?, string?) Prepare()
    {
        var root = RepoPaths.Root;
        var library = Environment.GetEnvironmentVariable("MAMBAST_OPS_LIB");
        if (string.IsNullOrEmpty(library))
        {
            library = Path.Combine(root, "artifacts", "native", "libmambast_ops.so");
        }

        if (!File.Exists(library))
        {
            var build = Exec("bash", root, Path.Combine(root, "scripts", "build-native.sh"));
            if (build is not null)
            {
                return (null, null, build);
            }
        }

        var modelDirectory = Directory.CreateTempSubdirectory("mambast-fused-").FullName;
        var export = Exec("/usr/bin/python3", Path.Combine(root, "model"), "-m", "mambast.export", "--out", modelDirectory,
            "--random-init", "--config", "tiny", "--seed", "7", "--scan", "fused");
        return export is null ? (modelDirectory, library, null) : (null, null, export);
    }

    /// <summary>Runs a tool; null when it succeeded, the reason otherwise.</summary>
    private static string? Exec(string file, string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        try
        {
            using var process = Process.Start(info)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode == 0 ? null : $"{file} {string.Join(' ', args)} failed: {stderr}{stdout.Result}";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"{file} is not available: {e.Message}";
        }
    }

    private static MambaStEngine Engine(out string modelDirectory)
    {
        var (dir, library, missing) = Prepared.Value;
        if (missing is not null && missing.Contains("not available", StringComparison.Ordinal))
        {
            Assert.Skip(missing);
        }

        missing.ShouldBeNull();
        modelDirectory = dir!;
        return MambaStEngine.Create(new InferenceOptions { ModelDirectory = dir!, CustomOpLibrary = library!, IntraOpThreads = 2 });
    }

    [Fact]
    public void The_fused_export_declares_the_mambast_domain_and_needs_the_library()
    {
        using var engine = Engine(out var dir);
        engine.Model.ScanVariant.ShouldBe("fused");
        ModelProtoHeader.Read(Path.Combine(dir, ModelFiles.StyleEncoder)).CustomDomains.ShouldBe(["mambast"]);
        ModelProtoHeader.Read(Path.Combine(dir, ModelFiles.Stylizer)).CustomDomains.ShouldBe(["mambast"]);

        var ex = Should.Throw<InferenceException>(() => MambaStEngine.Create(
            new InferenceOptions { ModelDirectory = dir, CustomOpLibrary = Path.Combine(dir, "no-such-libmambast_ops.so") }));
        ex.Message.ShouldContain("no-such-libmambast_ops.so");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fused_style_encoder_matches_pytorch(string caseName)
    {
        using var engine = Engine(out _);
        var style = Golden.Load(caseName, "style");
        var expected = Golden.Load(caseName, "style_tokens");

        var (tokens, count) = engine.RunStyleEncoder(style.Floats(), (int)style.Shape[0], (int)style.Shape[2], (int)style.Shape[3]);

        count.ShouldBe((int)expected.Shape[1]);
        Golden.MaxAbsDiff(tokens, expected.Floats()).ShouldBeLessThan(Golden.TokenTolerance);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fused_stylizer_matches_pytorch(string caseName)
    {
        using var engine = Engine(out _);
        var content = Golden.Load(caseName, "content");
        var tokens = Golden.Load(caseName, "style_tokens");
        var index = Golden.Load(caseName, "style_index");
        var strength = Golden.Load(caseName, "strength");
        var expected = Golden.Load(caseName, "stylized").Floats();
        int b = (int)content.Shape[0], h = (int)content.Shape[2], w = (int)content.Shape[3];

        float[] actual = [];
        engine.RunStylizer(content.Floats(), b, h, w, tokens.Floats(), (int)tokens.Shape[1], index.Int64s(), strength.Floats(),
            output => actual = output.ToArray(), TestContext.Current.CancellationToken);

        actual.Length.ShouldBe(expected.Length);
        Golden.MaxAbsDiff(actual, expected).ShouldBeLessThan(Golden.Tolerance);
    }
}
