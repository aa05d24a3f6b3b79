using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;

namespace MambaSt.Batch.Inference.Tests;

/// <summary>Reads NumPy .npy files (format 1.0, little-endian float32 / int64, C order).</summary>
public sealed partial record Npy(string Dtype, long[] Shape, byte[] Data)
{
    public static Npy Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY" || bytes[6] != 1)
        {
            throw new InvalidDataException($"{path} is not a version 1.x .npy file");
        }

        var headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
        var header = Encoding.ASCII.GetString(bytes, 10, headerLength);
        var descr = DescrPattern().Match(header).Groups[1].Value;
        if (FortranPattern().IsMatch(header))
        {
            throw new InvalidDataException($"{path}: Fortran order is not supported");
        }

        var shapeText = ShapePattern().Match(header).Groups[1].Value;
        var shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(long.Parse).ToArray();
        return new Npy(descr, shape, bytes[(10 + headerLength)..]);
    }

    public float[] Floats()
    {
        if (Dtype != "<f4")
        {
            throw new InvalidDataException($"dtype {Dtype} is not float32");
        }

        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Data).ToArray();
    }

    public long[] Int64s()
    {
        if (Dtype != "<i8")
        {
            throw new InvalidDataException($"dtype {Dtype} is not int64");
        }

        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(Data).ToArray();
    }

    [GeneratedRegex(@"'descr':\s*'([^']+)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order':\s*True")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
