using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Inference;

/// <summary>The opset imports of an ONNX file, read from the ModelProto's top-level fields without loading the
/// graph (length-delimited fields are skipped by seeking). Also rejects files that are not protobuf.</summary>
public sealed record ModelProtoHeader
{
    private const int OpsetImportField = 8;
    private const int GraphField = 7;
    private const int MetadataPropsField = 14;

    public required long IrVersion { get; init; }

    public required IReadOnlyDictionary<string, long> OpsetImports { get; init; }

    public bool HasGraph { get; init; }

    /// <summary>The model's metadata_props (e.g. mambast.scan_variant).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>Domains other than the standard "" / "ai.onnx" (and "ai.onnx.ml"), e.g. "mambast".</summary>
    public IReadOnlyList<string> CustomDomains =>
        OpsetImports.Keys.Where(d => d is not ("" or "ai.onnx" or "ai.onnx.ml")).Order(StringComparer.Ordinal).ToArray();

    public static ModelProtoHeader Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.RandomAccess);
        try
        {
            return Read(stream);
        }
        catch (InvalidDataException e)
        {
            throw new InferenceException(StylizationErrorCode.ModelError,
                $"{path} is not a valid ONNX model: {e.Message} (corrupt or truncated file?).", e);
        }
    }

    internal static ModelProtoHeader Read(Stream stream)
    {
        long ir = -1;
        var hasGraph = false;
        var opsets = new Dictionary<string, long>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        while (stream.Position < stream.Length)
        {
            var key = ReadVarint(stream);
            var field = (int)(key >> 3);
            var wire = (int)(key & 7);
            if (field == 0)
            {
                throw new InvalidDataException($"field number 0 at byte {stream.Position}");
            }

            switch (wire)
            {
                case 0:
                    var value = (long)ReadVarint(stream);
                    if (field == 1)
                    {
                        ir = value;
                    }

                    break;
                case 1:
                    Skip(stream, 8);
                    break;
                case 5:
                    Skip(stream, 4);
                    break;
                case 2:
                    var length = (long)ReadVarint(stream);
                    if (length < 0 || length > stream.Length - stream.Position)
                    {
                        throw new InvalidDataException(
                            $"field {field} claims {length} bytes at byte {stream.Position} but only {stream.Length - stream.Position} remain");
                    }

                    if (field == OpsetImportField)
                    {
                        var buffer = new byte[length];
                        stream.ReadExactly(buffer);
                        var (domain, version) = ReadOpset(buffer);
                        opsets[domain] = version;
                    }
                    else if (field == MetadataPropsField)
                    {
                        var buffer = new byte[length];
                        stream.ReadExactly(buffer);
                        var (entryKey, entryValue) = ReadEntry(buffer);
                        metadata[entryKey] = entryValue;
                    }
                    else
                    {
                        hasGraph |= field == GraphField;
                        stream.Seek(length, SeekOrigin.Current);
                    }

                    break;
                default:
                    throw new InvalidDataException($"unsupported protobuf wire type {wire} at byte {stream.Position}");
            }
        }

        if (ir <= 0 || opsets.Count == 0 || !hasGraph)
        {
            throw new InvalidDataException("no ir_version, opset_import or graph field");
        }

        return new ModelProtoHeader { IrVersion = ir, OpsetImports = opsets, HasGraph = hasGraph, Metadata = metadata };
    }

    private static (string Domain, long Version) ReadOpset(byte[] buffer)
    {
        using var stream = new MemoryStream(buffer, writable: false);
        var domain = "";
        long version = 0;
        while (stream.Position < stream.Length)
        {
            var key = ReadVarint(stream);
            var field = (int)(key >> 3);
            var wire = (int)(key & 7);
            if (field == 1 && wire == 2)
            {
                var length = (int)ReadVarint(stream);
                if (length > stream.Length - stream.Position)
                {
                    throw new InvalidDataException("truncated opset domain");
                }

                domain = System.Text.Encoding.UTF8.GetString(buffer, (int)stream.Position, length);
                stream.Seek(length, SeekOrigin.Current);
            }
            else if (field == 2 && wire == 0)
            {
                version = (long)ReadVarint(stream);
            }
            else
            {
                throw new InvalidDataException($"unexpected field {field} (wire type {wire}) in an opset import");
            }
        }

        return (domain, version);
    }

    private static (string Key, string Value) ReadEntry(byte[] buffer)
    {
        using var stream = new MemoryStream(buffer, writable: false);
        string key = "", value = "";
        while (stream.Position < stream.Length)
        {
            var tag = ReadVarint(stream);
            if ((tag & 7) != 2)
            {
                throw new InvalidDataException($"unexpected wire type {tag & 7} in a metadata entry");
            }

            var length = (int)ReadVarint(stream);
            if (length < 0 || length > stream.Length - stream.Position)
            {
                throw new InvalidDataException("truncated metadata entry");
            }

            var text = System.Text.Encoding.UTF8.GetString(buffer, (int)stream.Position, length);
            stream.Seek(length, SeekOrigin.Current);
            switch (tag >> 3)
            {
                case 1:
                    key = text;
                    break;
                case 2:
                    value = text;
                    break;
            }
        }

        return (key, value);
    }

    private static void Skip(Stream stream, int count)
    {
        if (stream.Length - stream.Position < count)
        {
            throw new InvalidDataException("truncated fixed-size field");
        }

        stream.Seek(count, SeekOrigin.Current);
    }

    private static ulong ReadVarint(Stream stream)
    {
        ulong result = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = stream.ReadByte();
            if (b < 0)
            {
                throw new InvalidDataException("truncated varint");
            }

            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw new InvalidDataException("varint longer than 10 bytes");
    }
}
