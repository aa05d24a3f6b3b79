namespace MambaSt.Batch.Submitter.Jobs;

/// <summary>The inputs taken from a source: files with an image extension.</summary>
public static class ImageFiles
{
    private static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".avif",
    };

    public static bool IsImage(string path) => Extensions.Contains(Path.GetExtension(path));
}
