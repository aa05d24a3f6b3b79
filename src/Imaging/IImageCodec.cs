namespace MambaSt.Batch.Imaging;

/// <summary>Decodes, resizes and encodes images. Implementations are thread-safe; use one per process.</summary>
public interface IImageCodec
{
    /// <summary>Decodes by content (the file name is never consulted) to 8-bit sRGB, applying EXIF
    /// orientation. Throws <see cref="ImageException"/> for bad or oversized input.</summary>
    RgbImage Decode(ReadOnlyMemory<byte> data, DecodeOptions? options = null);

    /// <summary>Reads at most MaxInputBytes + 1 bytes from the stream, then decodes.</summary>
    RgbImage Decode(Stream data, DecodeOptions? options = null);

    byte[] Encode(RgbImage image, EncodeOptions? options = null);

    /// <summary>Resamples to exactly width x height with lanczos3.</summary>
    RgbImage Resize(RgbImage image, int width, int height);
}
