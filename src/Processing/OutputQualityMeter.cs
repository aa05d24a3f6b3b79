using MambaSt.Batch.Contracts;
using MambaSt.Batch.Processing.Ports;

namespace MambaSt.Batch.Processing;

/// <summary>
/// Pixel statistics that flag a broken output (nearly uniform, or the content unchanged) at the cost of one pass
/// over pixels the worker already holds, so a batch report can list such outputs without decoding millions of files.
/// </summary>
public static class OutputQualityMeter
{
    public static OutputQuality Measure(RgbFrame content, RgbFrame output)
    {
        var rgb = output.Rgb;
        double sum = 0, sumSq = 0;
        var n = output.Width * output.Height;
        for (var i = 0; i < 3 * n; i += 3)
        {
            var y = (0.299 * rgb[i]) + (0.587 * rgb[i + 1]) + (0.114 * rgb[i + 2]);
            sum += y;
            sumSq += y * y;
        }

        var mean = sum / n;
        var std = Math.Sqrt(Math.Max(0, (sumSq / n) - (mean * mean)));
        return new OutputQuality { LumaStdDev = Math.Round(std, 3), ContentDifference = Math.Round(MeanAbsoluteDifference(content, output), 3) };
    }

    /// <summary>Per channel, 0-255; the content is sampled at the output's grid when the sizes differ (the engine pads to multiples of 8).</summary>
    private static double MeanAbsoluteDifference(RgbFrame content, RgbFrame output)
    {
        long total = 0;
        for (var y = 0; y < output.Height; y++)
        {
            var cy = (int)((long)y * content.Height / output.Height);
            for (var x = 0; x < output.Width; x++)
            {
                var cx = (int)((long)x * content.Width / output.Width);
                var o = 3 * ((y * output.Width) + x);
                var c = 3 * ((cy * content.Width) + cx);
                total += Math.Abs(output.Rgb[o] - content.Rgb[c]) + Math.Abs(output.Rgb[o + 1] - content.Rgb[c + 1]) + Math.Abs(output.Rgb[o + 2] - content.Rgb[c + 2]);
            }
        }

        return total / (3.0 * output.Width * output.Height);
    }
}
