using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Inference.Tests;

public class ImageTensorTests
{
    private static RgbPixels Ramp(int width, int height)
    {
        var rgb = new byte[3 * width * height];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var p = 3 * (y * width + x);
                rgb[p] = (byte)x;
                rgb[p + 1] = (byte)y;
                rgb[p + 2] = (byte)(x + y);
            }
        }

        return new RgbPixels(rgb, width, height);
    }

    [Theory]
    [InlineData(16, 16)]
    [InlineData(17, 24)]
    [InlineData(23, 24)]
    [InlineData(24, 24)]
    public void PadToPatch_rounds_up_to_a_multiple_of_8(int side, int padded) => ImageTensor.PadToPatch(side).ShouldBe(padded);

    [Fact]
    public void Reflect_padding_mirrors_without_repeating_the_edge_and_scales_to_unit()
    {
        var image = Ramp(19, 17);
        var planes = new float[3 * 24 * 24];

        ImageTensor.WriteReflectPadded(image, planes, 24, 24);

        float R(int x, int y) => planes[y * 24 + x] * 255f;
        float G(int x, int y) => planes[24 * 24 + y * 24 + x] * 255f;
        R(5, 3).ShouldBe(5f, 1e-4f);
        G(5, 3).ShouldBe(3f, 1e-4f);
        R(19, 0).ShouldBe(17f, 1e-4f); // x = 19 mirrors x = 17 (edge 18 not repeated)
        R(23, 0).ShouldBe(13f, 1e-4f);
        G(0, 17).ShouldBe(15f, 1e-4f);
        G(0, 23).ShouldBe(9f, 1e-4f);
        planes[2 * 24 * 24 + 23 * 24 + 23].ShouldBe((13 + 9) / 255f, 1e-6f);
    }

    [Fact]
    public void Pad_then_crop_returns_the_original_bytes()
    {
        var image = Golden.SmoothImage(37, 21, 3);
        var planes = new float[3 * 40 * 24];
        ImageTensor.WriteReflectPadded(image, planes, 24, 40);
        var back = new byte[image.Rgb.Length];

        ImageTensor.ReadCropped(planes, 24, 40, 37, 21, back);

        back.ShouldBe(image.Rgb.ToArray());
    }

    [Fact]
    public void Read_clamps_rounds_and_turns_NaN_into_0()
    {
        // one 2x1 image padded to 8x8: planes R, G, B
        var planes = new float[3 * 64];
        planes[0] = -0.3f;
        planes[1] = 1.7f;
        planes[64] = 0.5f;            // 127.5 -> 128
        planes[65] = 10.4f / 255f;     // -> 10
        planes[128] = float.NaN;
        planes[129] = float.PositiveInfinity;
        var rgb = new byte[6];

        ImageTensor.ReadCropped(planes, 8, 8, 2, 1, rgb);

        rgb.ShouldBe(new byte[] { 0, 128, 0, 255, 10, 255 });
    }

    [Fact]
    public void Reflect_padding_refuses_a_pad_as_large_as_the_image()
    {
        Should.Throw<ArgumentException>(() => ImageTensor.WriteReflectPadded(Ramp(4, 4), new float[3 * 64], 8, 8));
    }

    [Fact]
    public void Preserve_color_keeps_a_gray_output_gray_only_in_luminance()
    {
        byte[] content = [200, 40, 40, 20, 20, 220];
        byte[] stylized = [128, 128, 128, 90, 90, 90];

        ImageTensor.PreserveColor(content, stylized);

        stylized[0].ShouldBeGreaterThan(stylized[1]); // red content stays reddish
        stylized[5].ShouldBeGreaterThan(stylized[3]); // blue content stays bluish
        var y0 = 0.299 * stylized[0] + 0.587 * stylized[1] + 0.114 * stylized[2];
        y0.ShouldBe(128, 2.0); // luminance of the output kept
    }

    [Fact]
    public void Preserve_color_of_an_image_with_itself_is_the_identity_within_one_level()
    {
        var image = Golden.SmoothImage(16, 16, 4).Rgb.ToArray();
        var copy = (byte[])image.Clone();

        ImageTensor.PreserveColor(image, copy);

        for (var i = 0; i < image.Length; i++)
        {
            Math.Abs(copy[i] - image[i]).ShouldBeLessThanOrEqualTo(1);
        }
    }

    [Fact]
    public void FitStyle_scales_the_longest_side_then_crops_to_multiples_of_8()
    {
        var uniform = new byte[3 * 1000 * 600];
        Array.Fill(uniform, (byte)77);

        var fitted = ImageTensor.FitStyle(new RgbPixels(uniform, 1000, 600), 512);

        (fitted.Width, fitted.Height).ShouldBe((512, 304));
        fitted.Rgb.ToArray().ShouldAllBe(v => v == 77);
    }

    [Fact]
    public void Area_resize_averages_blocks()
    {
        byte[] rgb = [0, 0, 0, 100, 100, 100, 200, 200, 200, 50, 50, 50];
        var half = ImageTensor.ResizeArea(new RgbPixels(rgb, 2, 2), 1, 1);
        half.Rgb.ToArray().ShouldBe(new byte[] { 88, 88, 88 });
    }

    [Fact]
    public void FitStyle_refuses_a_style_that_ends_below_8_px()
    {
        Should.Throw<InferenceException>(() => ImageTensor.FitStyle(new RgbPixels(new byte[3 * 2000 * 20], 2000, 20), 512))
            .Code.ShouldBe(StylizationErrorCode.InvalidImage);
    }
}
