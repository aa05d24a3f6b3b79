using Microsoft.Extensions.Configuration;
using MambaSt.Batch.Contracts;
using MambaSt.Batch.Testing;
using Microsoft.Extensions.Logging;

namespace MambaSt.Batch.Inference.Tests;

/// <summary>Inference:Scan on the bundled model (models/default: portable graphs plus fused siblings sharing their
/// weights) with the real libmambast_ops.so (scripts/build-native.sh, copied next to the tests) or none.</summary>
public class ScanSelectionTests
{
    private static string BundledModel => Path.Combine(RepoPaths.Root, "models", "default");

    private static string MissingLibrary => Path.Combine(Path.GetTempPath(), $"no-such-dir-{Guid.NewGuid():N}", "libmambast_ops.so");

    private static InferenceOptions Options(ScanMode scan, string? library = null) => new()
    {
        ModelDirectory = BundledModel,
        Scan = scan,
        CustomOpLibrary = library ?? InferenceOptions.DefaultCustomOpLibrary,
        IntraOpThreads = 2,
    };

    private static void RequireLibrary() =>
        Assert.SkipUnless(ScanSelector.Candidates(new InferenceOptions()).Any(File.Exists),
            "libmambast_ops.so not built (scripts/build-native.sh, run by scripts/setup.sh)");

    private static byte[] Stylize(MambaStEngine engine)
    {
        var style = engine.EncodeStyle(Golden.SmoothImage(64, 48, 3));
        return engine.Stylize(style, [new ContentItem { Content = Golden.SmoothImage(64, 64, 4), Seed = 5, Strength = 1f }])[0].Pixels.Rgb.ToArray();
    }

    [Fact]
    public void Auto_runs_the_bundled_model_fused_when_the_library_loads_and_says_so()
    {
        RequireLibrary();
        var logger = new ListLogger<MambaStEngine>();

        using var engine = MambaStEngine.Create(Options(ScanMode.Auto), logger);

        engine.Model.ScanVariant.ShouldBe("fused");
        engine.CustomOpLibrary.ShouldNotBeNull();
        engine.ScanFallback.ShouldBeNull();
        logger.Entries.ShouldNotContain(e => e.Level >= LogLevel.Warning);
        logger.Entries.ShouldContain(e => e.Level == LogLevel.Information && e.Message.StartsWith("Selective scan: fused", StringComparison.Ordinal)
                                          && e.Message.Contains("libmambast_ops.so"));
    }

    [Fact]
    public void Fused_and_sequential_graphs_of_the_bundled_model_give_the_same_image()
    {
        RequireLibrary();
        using var fused = MambaStEngine.Create(Options(ScanMode.Fused));
        using var sequential = MambaStEngine.Create(Options(ScanMode.Sequential));
        sequential.Model.ScanVariant.ShouldBe("sequential");
        sequential.CustomOpLibrary.ShouldBeNull();

        var a = Stylize(fused);
        var b = Stylize(sequential);

        a.Length.ShouldBe(b.Length);
        a.Zip(b, (x, y) => Math.Abs(x - y)).Max().ShouldBeLessThanOrEqualTo(1); // 8-bit rounding of float differences ~1e-5
    }

    [Fact]
    public void A_missing_library_falls_back_to_the_sequential_scan_with_one_warning_naming_the_path_and_the_cost()
    {
        var missing = MissingLibrary;
        var logger = new ListLogger<MambaStEngine>();

        using var engine = MambaStEngine.Create(Options(ScanMode.Auto, missing), logger);

        engine.Model.ScanVariant.ShouldBe("sequential");
        engine.CustomOpLibrary.ShouldBeNull();
        engine.ScanFallback.ShouldNotBeNull().ShouldContain(missing);
        var warning = logger.Entries.Where(e => e.Level >= LogLevel.Warning).ShouldHaveSingleItem();
        warning.Message.ShouldContain("not found");
        warning.Message.ShouldContain(missing);
        warning.Message.ShouldContain("3.5x slower");
        logger.Entries.ShouldContain(e => e.Message.StartsWith("Selective scan: sequential", StringComparison.Ordinal));
        Stylize(engine).Length.ShouldBe(64 * 64 * 3);
    }

    [Fact]
    public void A_library_that_fails_to_load_falls_back_with_onnx_runtimes_reason()
    {
        var bogus = Path.Combine(Path.GetTempPath(), $"not-a-library-{Guid.NewGuid():N}.so");
        File.WriteAllText(bogus, "not an ELF file");
        try
        {
            var logger = new ListLogger<MambaStEngine>();

            using var engine = MambaStEngine.Create(Options(ScanMode.Auto, bogus), logger);

            engine.Model.ScanVariant.ShouldBe("sequential");
            var warning = logger.Entries.Where(e => e.Level >= LogLevel.Warning).ShouldHaveSingleItem();
            warning.Message.ShouldContain($"{bogus} failed to load");
        }
        finally
        {
            File.Delete(bogus);
        }
    }

    [Fact]
    public void Forcing_fused_without_the_library_is_a_clear_start_up_error()
    {
        var missing = MissingLibrary;

        var ex = Should.Throw<InferenceException>(() => MambaStEngine.Create(Options(ScanMode.Fused, missing)));

        ex.Code.ShouldBe(StylizationErrorCode.ModelError);
        ex.Message.ShouldContain("Inference:Scan is Fused");
        ex.Message.ShouldContain(missing);
        ex.Message.ShouldContain("build-native.sh");
    }

    [Fact]
    public void Sequential_does_not_touch_the_library_and_logs_no_warning()
    {
        var logger = new ListLogger<MambaStEngine>();

        using var engine = MambaStEngine.Create(Options(ScanMode.Sequential, MissingLibrary), logger);

        engine.Model.ScanVariant.ShouldBe("sequential");
        logger.Entries.ShouldNotContain(e => e.Level >= LogLevel.Warning);
    }

    [Fact]
    public void Fused_graphs_whose_weights_file_changed_are_refused()
    {
        var dir = Directory.CreateTempSubdirectory("mambast-stale-").FullName;
        try
        {
            foreach (var file in Directory.GetFiles(BundledModel, "*.onnx"))
            {
                File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
            }

            // one weight byte changed: the portable graph still loads, but the fused one would read other weights
            var path = Path.Combine(dir, ModelFiles.Stylizer);
            var bytes = File.ReadAllBytes(path);
            bytes[bytes.Length / 2] ^= 0x01;
            File.WriteAllBytes(path, bytes);

            var ex = Should.Throw<InferenceException>(() => MambaStEngine.Create(new InferenceOptions { ModelDirectory = dir, Scan = ScanMode.Fused }));

            ex.Message.ShouldContain("has changed since the export");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("fused", ScanMode.Fused)]
    [InlineData("Sequential", ScanMode.Sequential)]
    [InlineData("auto", ScanMode.Auto)]
    public void The_setting_binds_from_configuration(string value, ScanMode expected)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Inference:Scan"] = value }).Build();

        configuration.GetSection("Inference").Get<InferenceOptions>()!.Scan.ShouldBe(expected);
    }

    [Fact]
    public void An_unknown_scan_value_is_rejected()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Inference:Scan"] = "fastest" }).Build();

        var ex = Should.Throw<InvalidOperationException>(() => configuration.GetSection("Inference").Get<InferenceOptions>());
        ex.Message.ShouldContain("Inference:Scan");
    }
}
