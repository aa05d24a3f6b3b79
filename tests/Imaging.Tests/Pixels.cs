namespace MambaSt.Batch.Imaging.Tests;

internal static class Pixels
{
    public static void ShouldBeColour(this RgbImage image, int x, int y, byte[] expected, int tolerance)
    {
        var actual = image.Pixel(x, y).ToArray();
        for (var c = 0; c < 3; c++)
        {
            Math.Abs(actual[c] - expected[c]).ShouldBeLessThanOrEqualTo(
                tolerance,
                $"pixel ({x},{y}) is [{string.Join(",", actual)}], expected [{string.Join(",", expected)}] +-{tolerance}");
        }
    }

    /// <summary>Checks the centre of each quadrant against <see cref="ImageCorpus.QuadrantColours"/>.</summary>
    public static void ShouldShowQuadrants(this RgbImage image, int tolerance)
    {
        int[] xs = [image.Width / 4, image.Width * 3 / 4];
        int[] ys = [image.Height / 4, image.Height * 3 / 4];
        for (var q = 0; q < 4; q++)
        {
            image.ShouldBeColour(xs[q % 2], ys[q / 2], ImageCorpus.QuadrantColours[q], tolerance);
        }
    }
}
