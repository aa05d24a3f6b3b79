using System.Globalization;
using MambaSt.Batch.Contracts;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace MambaSt.Batch.Inference;

/// <summary>What the engine expects of each graph: format-1 metadata and the input/output names, types and ranks.</summary>
internal static class GraphContract
{
    public const string StyleInput = "style";
    public const string StyleTokens = "style_tokens";
    public const string ContentInput = "content";
    public const string StyleIndexInput = "style_index";
    public const string StrengthInput = "strength";
    public const string StylizedOutput = "stylized";

    private static readonly (string Name, TensorElementType Type, int Rank)[] StyleEncoderInputs = [(StyleInput, TensorElementType.Float, 4)];
    private static readonly (string Name, TensorElementType Type, int Rank)[] StyleEncoderOutputs = [(StyleTokens, TensorElementType.Float, 3)];

    private static readonly (string Name, TensorElementType Type, int Rank)[] StylizerInputs =
    [
        (ContentInput, TensorElementType.Float, 4),
        (StyleTokens, TensorElementType.Float, 3),
        (StyleIndexInput, TensorElementType.Int64, 2),
        (StrengthInput, TensorElementType.Float, 1),
    ];

    private static readonly (string Name, TensorElementType Type, int Rank)[] StylizerOutputs = [(StylizedOutput, TensorElementType.Float, 4)];

    public static ModelInfo Validate(string styleEncoderPath, InferenceSession styleEncoder, string stylizerPath, InferenceSession stylizer)
    {
        var encoderMeta = CheckMetadata(styleEncoderPath, styleEncoder, "style_encoder");
        var stylizerMeta = CheckMetadata(stylizerPath, stylizer, "stylizer");
        CheckSignature(styleEncoderPath, "input", styleEncoder.InputMetadata, StyleEncoderInputs);
        CheckSignature(styleEncoderPath, "output", styleEncoder.OutputMetadata, StyleEncoderOutputs);
        CheckSignature(stylizerPath, "input", stylizer.InputMetadata, StylizerInputs);
        CheckSignature(stylizerPath, "output", stylizer.OutputMetadata, StylizerOutputs);

        foreach (var key in new[] { "mambast.model_name", "mambast.model_version", "mambast.config", "mambast.d_model", "mambast.scan_variant" })
        {
            if (encoderMeta[key] != stylizerMeta[key])
            {
                throw Mismatch(stylizerPath, $"metadata key '{key}'", $"'{encoderMeta[key]}' (as in {styleEncoderPath})", $"'{stylizerMeta[key]}'");
            }
        }

        var dModelText = stylizerMeta["mambast.d_model"];
        if (!int.TryParse(dModelText, NumberStyles.None, CultureInfo.InvariantCulture, out var dModel) || dModel <= 0)
        {
            throw Mismatch(stylizerPath, "metadata key 'mambast.d_model'", "a positive integer", $"'{dModelText}'");
        }

        return new ModelInfo
        {
            Id = stylizerMeta["mambast.model_name"],
            Version = stylizerMeta["mambast.model_version"],
            Config = stylizerMeta["mambast.config"],
            ScanVariant = stylizerMeta["mambast.scan_variant"],
            DModel = dModel,
            Provenance = stylizerMeta.GetValueOrDefault("mambast.provenance", ""),
            License = stylizerMeta.GetValueOrDefault("mambast.license", ""),
        };
    }

    private static Dictionary<string, string> CheckMetadata(string path, InferenceSession session, string graph)
    {
        var map = session.ModelMetadata.CustomMetadataMap;
        Expect(path, map, "mambast.format", "1");
        Expect(path, map, "mambast.graph", graph);
        Expect(path, map, "mambast.patch_size", ImageTensor.PatchSize.ToString(CultureInfo.InvariantCulture));
        Expect(path, map, "mambast.input_range", "0,1");
        foreach (var key in new[] { "mambast.model_name", "mambast.model_version", "mambast.config", "mambast.d_model", "mambast.scan_variant" })
        {
            if (!map.TryGetValue(key, out var value) || string.IsNullOrWhiteSpace(value))
            {
                throw Mismatch(path, $"metadata key '{key}'", "a value", "nothing");
            }
        }

        return map;
    }

    private static void Expect(string path, Dictionary<string, string> map, string key, string expected)
    {
        if (!map.TryGetValue(key, out var found))
        {
            throw Mismatch(path, $"metadata key '{key}'", $"'{expected}'", "no such key (not a Mamba-ST format-1 export?)");
        }

        if (found != expected)
        {
            throw Mismatch(path, $"metadata key '{key}'", $"'{expected}'", $"'{found}'");
        }
    }

    private static void CheckSignature(string path, string kind, IReadOnlyDictionary<string, NodeMetadata> actual,
        (string Name, TensorElementType Type, int Rank)[] expected)
    {
        var expectedNames = string.Join(", ", expected.Select(e => e.Name));
        var actualNames = string.Join(", ", actual.Keys);
        if (actual.Count != expected.Length || expected.Any(e => !actual.ContainsKey(e.Name)))
        {
            throw Mismatch(path, $"{kind}s", expectedNames, actualNames);
        }

        foreach (var (name, type, rank) in expected)
        {
            var node = actual[name];
            if (!node.IsTensor || node.ElementDataType != type || node.Dimensions.Length != rank)
            {
                throw Mismatch(path, $"{kind} '{name}'", $"{type} tensor of rank {rank}",
                    node.IsTensor ? $"{node.ElementDataType} tensor of rank {node.Dimensions.Length}" : node.OnnxValueType.ToString());
            }
        }
    }

    private static InferenceException Mismatch(string path, string what, string expected, string found) =>
        new(StylizationErrorCode.ModelError, $"{path}: unexpected {what}: expected {expected}, found {found}.");
}
