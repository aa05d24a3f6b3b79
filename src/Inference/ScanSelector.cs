using System.Security.Cryptography;
using MambaSt.Batch.Contracts;
using Microsoft.ML.OnnxRuntime;

namespace MambaSt.Batch.Inference;

/// <summary>The graphs the engine opens, the custom-op library they need (null: none), and, after an automatic
/// fallback to the plain-ONNX scan, why.</summary>
internal sealed record ScanChoice(string StyleEncoder, string Stylizer, string? Library, string? Fallback);

/// <summary>
/// Picks the selective-scan path (<see cref="InferenceOptions.Scan"/>). A model folder holds the portable graphs
/// (style_encoder.onnx, stylizer.onnx: plain ONNX, the scan as a Loop) and, from mambast.export, fused siblings
/// (*.fused.onnx: the custom op mambast::SelectiveScan) that keep no weights of their own: their initializers are
/// external data pointing into the portable file, whose SHA-256 they record. A folder exported with --scan fused
/// has only fused graphs under the portable names.
/// </summary>
internal static class ScanSelector
{
    public const string FusedSuffix = ".fused.onnx";
    private const string WeightsFileKey = "mambast.weights_file";
    private const string WeightsShaKey = "mambast.weights_sha256";

    public static string FusedPath(string modelDirectory, string graphFile) =>
        Path.Combine(modelDirectory, Path.GetFileNameWithoutExtension(graphFile) + FusedSuffix);

    public static ScanChoice Choose(InferenceOptions options)
    {
        var dir = options.ModelDirectory;
        var encoder = Path.Combine(dir, ModelFiles.StyleEncoder);
        var stylizer = Path.Combine(dir, ModelFiles.Stylizer);
        var domains = CustomDomains(encoder, stylizer);
        if (domains.Length > 0)
        {
            if (options.Scan == ScanMode.Sequential)
            {
                throw new InferenceException(StylizationErrorCode.ModelError,
                    $"Inference:Scan is Sequential, but the model in {dir} has only fused graphs (custom operator domain(s) " +
                    $"{string.Join(", ", domains)}). Export it with `python -m mambast.export --scan sequential`, which also writes the fused siblings.");
            }

            var library = LoadLibrary(options, out var failure) ?? throw new InferenceException(StylizationErrorCode.ModelError,
                $"The model in {dir} uses the custom operator domain(s) {string.Join(", ", domains)}, which need the custom-op library: " +
                $"{failure} Build it with scripts/build-native.sh (make native) and copy libmambast_ops.so next to the application " +
                "(or set Inference:CustomOpLibrary), or export the model with --scan sequential.");
            return new ScanChoice(encoder, stylizer, library, null);
        }

        if (options.Scan == ScanMode.Sequential)
        {
            return new ScanChoice(encoder, stylizer, null, null);
        }

        var fusedEncoder = FusedPath(dir, ModelFiles.StyleEncoder);
        var fusedStylizer = FusedPath(dir, ModelFiles.Stylizer);
        string? reason = null, lib = null;
        if (!File.Exists(fusedEncoder) || !File.Exists(fusedStylizer))
        {
            reason = $"the model in {dir} has no fused graphs ({Path.GetFileName(fusedEncoder)}, {Path.GetFileName(fusedStylizer)}; " +
                     "re-export it with python -m mambast.export)";
        }
        else
        {
            reason = CheckWeights(dir, fusedEncoder) ?? CheckWeights(dir, fusedStylizer);
            if (reason is null)
            {
                lib = LoadLibrary(options, out reason);
            }
        }

        if (reason is null)
        {
            return new ScanChoice(fusedEncoder, fusedStylizer, lib, null);
        }

        if (options.Scan == ScanMode.Fused)
        {
            throw new InferenceException(StylizationErrorCode.ModelError,
                $"Inference:Scan is Fused, but the fused scan cannot be used: {reason} " +
                "Build the library with scripts/build-native.sh (make native), or set Inference:Scan=auto to fall back to the plain-ONNX scan.");
        }

        return new ScanChoice(encoder, stylizer, null, reason);
    }

    private static string[] CustomDomains(string encoder, string stylizer) =>
        ModelProtoHeader.Read(encoder).CustomDomains.Union(ModelProtoHeader.Read(stylizer).CustomDomains).ToArray();

    /// <summary>Where the library is looked for: the setting (relative: next to the application), and with the
    /// default name also artifacts/native/ of a checkout above the application (development builds).</summary>
    public static IReadOnlyList<string> Candidates(InferenceOptions options)
    {
        var setting = string.IsNullOrWhiteSpace(options.CustomOpLibrary) ? InferenceOptions.DefaultCustomOpLibrary : options.CustomOpLibrary;
        if (Path.IsPathRooted(setting))
        {
            return [setting];
        }

        var found = new List<string> { Path.Combine(AppContext.BaseDirectory, setting) };
        if (setting == InferenceOptions.DefaultCustomOpLibrary)
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory).Parent; dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "artifacts", "native", setting);
                if (File.Exists(candidate))
                {
                    found.Add(candidate);
                    break;
                }
            }
        }

        return found;
    }

    /// <summary>The first candidate that ONNX Runtime can register, or null with the reason (not found, with the
    /// paths looked at; or failed to load, with ONNX Runtime's message).</summary>
    private static string? LoadLibrary(InferenceOptions options, out string? failure)
    {
        var candidates = Candidates(options);
        var existing = candidates.Where(File.Exists).ToList();
        if (existing.Count == 0)
        {
            failure = $"the custom-op library was not found (looked at {string.Join(", ", candidates)}; Inference:CustomOpLibrary).";
            return null;
        }

        _ = OrtEnvironment.Instance;
        var errors = new List<string>();
        foreach (var path in existing)
        {
            try
            {
                using var probe = new SessionOptions();
                probe.RegisterCustomOpLibrary(path);
                failure = null;
                return path;
            }
            catch (OnnxRuntimeException e)
            {
                errors.Add($"{path} failed to load: {e.Message}");
            }
        }

        failure = string.Join("; ", errors) + ".";
        return null;
    }

    /// <summary>A fused graph whose weights live in another file checks that file's SHA-256: null when it matches.</summary>
    private static string? CheckWeights(string dir, string fusedGraph)
    {
        var meta = ModelProtoHeader.Read(fusedGraph).Metadata;
        if (!meta.TryGetValue(WeightsFileKey, out var file) || !meta.TryGetValue(WeightsShaKey, out var expected))
        {
            return null;
        }

        var path = Path.Combine(dir, Path.GetFileName(file));
        if (!File.Exists(path))
        {
            return $"{Path.GetFileName(fusedGraph)} takes its weights from {path}, which does not exist.";
        }

        using var stream = File.OpenRead(path);
        var actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        return actual == expected
            ? null
            : $"{Path.GetFileName(fusedGraph)} takes its weights from {path}, which has changed since the export (SHA-256 {actual}, expected {expected}); re-export the model.";
    }
}
