using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Imaging;

public enum ImageErrorKind
{
    Corrupt,
    UnsupportedFormat,
    Empty,
    TooManyBytes,
    TooManyPixels,
    Timeout,
}

/// <summary>An image could not be decoded or encoded; <see cref="Kind"/> says why and
/// <see cref="ErrorCode"/> is the job failure code it maps to.</summary>
public sealed class ImageException(ImageErrorKind kind, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public ImageErrorKind Kind { get; } = kind;

    public StylizationErrorCode ErrorCode => Kind switch
    {
        ImageErrorKind.TooManyBytes or ImageErrorKind.TooManyPixels => StylizationErrorCode.ImageTooLarge,
        ImageErrorKind.Timeout => StylizationErrorCode.Timeout,
        _ => StylizationErrorCode.InvalidImage,
    };
}
