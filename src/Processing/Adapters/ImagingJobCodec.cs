using MambaSt.Batch.Contracts;
using MambaSt.Batch.Imaging;
using MambaSt.Batch.Processing.Ports;

namespace MambaSt.Batch.Processing.Adapters;

/// <summary>The pipeline's codec over libvips (<see cref="IImageCodec"/>); maps image errors to job failures.</summary>
internal sealed class ImagingJobCodec(IImageCodec codec) : IJobImageCodec
{
    public RgbFrame Decode(ReadOnlyMemory<byte> data, int maxSide)
    {
        try
        {
            var image = codec.Decode(data, new DecodeOptions { MaxSide = maxSide });
            return new RgbFrame(image.Pixels, image.Width, image.Height);
        }
        catch (ImageException e)
        {
            throw new JobFailedException(e.ErrorCode, e.ErrorCode == StylizationErrorCode.Timeout, e.Message, e);
        }
    }

    public byte[] Encode(RgbFrame image, OutputFormat format, int quality)
    {
        try
        {
            return codec.Encode(new RgbImage(image.Width, image.Height, image.Rgb), new EncodeOptions { Format = format, Quality = Math.Clamp(quality, 1, 100) });
        }
        catch (ImageException e)
        {
            throw new JobFailedException(e.ErrorCode, false, "encoding the output failed: " + e.Message, e);
        }
    }
}
