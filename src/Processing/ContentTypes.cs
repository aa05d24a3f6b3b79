using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Processing;

public static class ContentTypes
{
    public static string For(OutputFormat format) => format switch
    {
        OutputFormat.Jpeg => "image/jpeg",
        OutputFormat.Png => "image/png",
        OutputFormat.Webp => "image/webp",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown output format"),
    };
}
