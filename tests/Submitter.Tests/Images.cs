using System.IO.Compression;
using System.Buffers.Binary;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary>Writes small valid PNG files (RGB, no external library) with content that differs per seed.</summary>
internal static class Images
{
    public static void WritePng(string path, int width, int height, int seed)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var raw = new byte[height * (1 + width * 3)];
        var random = new Random(seed);
        for (var y = 0; y < height; y++)
        {
            var row = y * (1 + width * 3);
            for (var x = 0; x < width; x++)
            {
                raw[row + 1 + x * 3] = (byte)(x * 255 / width);
                raw[row + 2 + x * 3] = (byte)(y * 255 / height);
                raw[row + 3 + x * 3] = (byte)random.Next(256);
            }
        }

        using var file = File.Create(path);
        file.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8;
        header[9] = 2;
        Chunk(file, "IHDR", header);
        using (var compressed = new MemoryStream())
        {
            using (var z = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true)) z.Write(raw);
            Chunk(file, "IDAT", compressed.ToArray());
        }

        Chunk(file, "IEND", []);
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        var typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
        s.Write(typeBytes);
        s.Write(data);
        var crc = Crc(typeBytes, data);
        BinaryPrimitives.WriteUInt32BigEndian(len, crc);
        s.Write(len);
    }

    private static uint Crc(byte[] a, byte[] b)
    {
        var c = 0xFFFFFFFFu;
        foreach (var part in new[] { a, b })
        {
            foreach (var x in part)
            {
                c ^= x;
                for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }
        }

        return c ^ 0xFFFFFFFFu;
    }
}
