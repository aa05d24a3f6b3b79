using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Processing.Ports;

/// <summary>Interleaved RGB8 pixels, stride 3 x Width.</summary>
public sealed record RgbFrame(byte[] Rgb, int Width, int Height);

/// <summary>Decoding and encoding as the pipeline uses them.</summary>
public interface IJobImageCodec
{
    /// <summary>Decodes to 8-bit sRGB, orientation applied, shrunk so the longest side is at most <paramref name="maxSide"/>.</summary>
    RgbFrame Decode(ReadOnlyMemory<byte> data, int maxSide);

    byte[] Encode(RgbFrame image, OutputFormat format, int quality);
}
