using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Inference.Tests;

/// <summary>RGB8 in, RGB8 out through the public API, with the tiny golden model.</summary>
public class EndToEndTests
{
    private static readonly MambaStEngine Engine = Golden.Engine("sequential");

    private static ContentItem Item(RgbPixels content, ulong seed, float strength = 1f) => new() { Content = content, Seed = seed, Strength = strength };

    [Fact]
    public void Same_inputs_and_seed_give_identical_bytes_twice()
    {
        var style = Golden.SmoothImage(80, 48, 1);
        var content = Golden.SmoothImage(64, 64, 2);

        var first = Engine.Stylize(Engine.EncodeStyle(style), [Item(content, 5)], TestContext.Current.CancellationToken)[0].Pixels.Rgb.ToArray();
        var second = Engine.Stylize(Engine.EncodeStyle(style), [Item(content, 5)], TestContext.Current.CancellationToken)[0].Pixels.Rgb.ToArray();

        second.ShouldBe(first);
        first.ShouldNotBe(content.Rgb.ToArray());
    }

    [Fact]
    public void A_different_seed_reorders_the_style_tokens_and_changes_the_output()
    {
        var style = Engine.EncodeStyle(Golden.SmoothImage(64, 64, 3));
        var content = Golden.SmoothImage(64, 64, 4);

        var results = Engine.Stylize(style, [Item(content, 1), Item(content, 2)], TestContext.Current.CancellationToken);

        results[0].Pixels.Rgb.ToArray().ShouldNotBe(results[1].Pixels.Rgb.ToArray());
        results.Select(r => r.Seed).ShouldBe([1UL, 2UL]);
    }

    [Fact]
    public void A_batch_gives_the_same_pixels_as_single_runs_within_one_level()
    {
        var style = Engine.EncodeStyle(Golden.SmoothImage(48, 48, 5));
        var a = Golden.SmoothImage(40, 32, 6);
        var b = Golden.SmoothImage(40, 32, 7);

        var batch = Engine.Stylize(style, [Item(a, 3, 1f), Item(b, 4, 0.5f)], TestContext.Current.CancellationToken);
        var singleA = Engine.Stylize(style, [Item(a, 3, 1f)], TestContext.Current.CancellationToken)[0];
        var singleB = Engine.Stylize(style, [Item(b, 4, 0.5f)], TestContext.Current.CancellationToken)[0];

        MaxByteDiff(batch[0].Pixels, singleA.Pixels).ShouldBeLessThanOrEqualTo(1);
        MaxByteDiff(batch[1].Pixels, singleB.Pixels).ShouldBeLessThanOrEqualTo(1);
    }

    [Fact]
    public void Sizes_that_are_not_multiples_of_8_come_back_at_their_own_size()
    {
        var style = Engine.EncodeStyle(Golden.SmoothImage(37, 29, 8));
        var content = Golden.SmoothImage(45, 70, 9);

        var result = Engine.Stylize(style, [Item(content, 1)], TestContext.Current.CancellationToken)[0].Pixels;

        (result.Width, result.Height).ShouldBe((45, 70));
        result.Rgb.Length.ShouldBe(45 * 70 * 3);
        (style.GridWidth, style.GridHeight).ShouldBe((4, 3));
    }

    [Fact]
    public void Large_styles_are_scaled_to_StyleMaxSide()
    {
        var options = Golden.Options("sequential");
        options.StyleMaxSide = 64;
        using var small = MambaStEngine.Create(options);

        var encoding = small.EncodeStyle(Golden.SmoothImage(200, 100, 10));

        (encoding.GridWidth, encoding.GridHeight).ShouldBe((8, 4));
        small.StyleGrid(200, 100).ShouldBe((8, 4));
        encoding.SizeInBytes.ShouldBe(8 * 4 * 32 * sizeof(float));
    }

    [Fact]
    public void Preserve_content_color_keeps_the_content_chroma()
    {
        var style = Engine.EncodeStyle(Golden.SmoothImage(64, 64, 11));
        var content = Golden.SmoothImage(32, 32, 12);

        var plain = Engine.Stylize(style, [Item(content, 1)], TestContext.Current.CancellationToken)[0].Pixels.Rgb.ToArray();
        var kept = Engine.Stylize(style, [Item(content, 1) with { PreserveContentColor = true }], TestContext.Current.CancellationToken)[0].Pixels.Rgb.ToArray();

        ChromaDistance(kept, content.Rgb.ToArray()).ShouldBeLessThan(ChromaDistance(plain, content.Rgb.ToArray()));
    }

    [Fact]
    public void Content_smaller_than_16_px_is_an_InvalidImage()
    {
        var style = Engine.EncodeStyle(Golden.SmoothImage(32, 32, 1));
        var ex = Should.Throw<InferenceException>(() => Engine.Stylize(style, [Item(Golden.SmoothImage(15, 40, 1), 1)]));
        ex.Code.ShouldBe(StylizationErrorCode.InvalidImage);
        ex.Message.ShouldContain("15x40");
    }

    [Fact]
    public void Content_above_MaxSide_is_ImageTooLarge()
    {
        var style = Engine.EncodeStyle(Golden.SmoothImage(32, 32, 1));
        var ex = Should.Throw<InferenceException>(() => Engine.Stylize(style, [Item(Golden.SmoothImage(1025, 16, 1), 1)]));
        ex.Code.ShouldBe(StylizationErrorCode.ImageTooLarge);
        ex.Message.ShouldContain("MaxSide");
    }

    [Fact]
    public void A_style_smaller_than_8_px_is_an_InvalidImage()
    {
        Should.Throw<InferenceException>(() => Engine.EncodeStyle(Golden.SmoothImage(7, 64, 1))).Code.ShouldBe(StylizationErrorCode.InvalidImage);
    }

    [Fact]
    public void A_pixel_buffer_of_the_wrong_length_is_an_InvalidImage()
    {
        Should.Throw<InferenceException>(() => new RgbPixels(new byte[10], 2, 2)).Code.ShouldBe(StylizationErrorCode.InvalidImage);
    }

    [Fact]
    public void Mixed_sizes_in_one_batch_and_strength_out_of_range_are_refused()
    {
        var style = Engine.EncodeStyle(Golden.SmoothImage(32, 32, 1));
        Should.Throw<ArgumentException>(() => Engine.Stylize(style, [Item(Golden.SmoothImage(32, 32, 1), 1), Item(Golden.SmoothImage(40, 32, 1), 1)]));
        Should.Throw<ArgumentOutOfRangeException>(() => Engine.Stylize(style, [Item(Golden.SmoothImage(32, 32, 1), 1, 1.5f)]));
        Should.Throw<ArgumentOutOfRangeException>(() => Engine.Stylize(style, [Item(Golden.SmoothImage(32, 32, 1), 1, float.NaN)]));
    }

    [Fact]
    public void A_cancelled_token_terminates_the_ONNX_Runtime_run_and_the_next_run_is_unaffected()
    {
        var style = Engine.EncodeStyle(Golden.SmoothImage(32, 32, 1));
        var content = Golden.SmoothImage(32, 32, 2);
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        var cancelled = Should.Throw<OperationCanceledException>(() => Engine.Stylize(style, [Item(content, 1)], cts.Token));

        // ONNX Runtime's own refusal (RunOptions.Terminate), not a check before the run.
        cancelled.InnerException.ShouldBeOfType<Microsoft.ML.OnnxRuntime.OnnxRuntimeException>();
        cancelled.CancellationToken.ShouldBe(cts.Token);
        Engine.Stylize(style, [Item(content, 1)], TestContext.Current.CancellationToken)[0].Pixels.Rgb.ToArray()
            .ShouldBe(Engine.Stylize(style, [Item(content, 1)], TestContext.Current.CancellationToken)[0].Pixels.Rgb.ToArray());
    }

    [Fact]
    public async Task Concurrent_runs_from_many_threads_equal_a_sequential_run()
    {
        var style = Engine.EncodeStyle(Golden.SmoothImage(48, 48, 13));
        var contents = Enumerable.Range(0, 6).Select(i => Golden.SmoothImage(32, 24, 20 + i)).ToArray();
        var sequential = contents.Select((c, i) => Engine.Stylize(style, [Item(c, (ulong)i)])[0].Pixels.Rgb.ToArray()).ToArray();

        var parallel = await Task.WhenAll(contents.Select((c, i) =>
            Task.Run(() => Engine.Stylize(style, [Item(c, (ulong)i)])[0].Pixels.Rgb.ToArray(), TestContext.Current.CancellationToken)));

        for (var i = 0; i < contents.Length; i++)
        {
            parallel[i].ShouldBe(sequential[i]);
        }
    }

    private static int MaxByteDiff(RgbPixels a, RgbPixels b)
    {
        var x = a.Rgb.Span;
        var y = b.Rgb.Span;
        var max = 0;
        for (var i = 0; i < x.Length; i++)
        {
            max = Math.Max(max, Math.Abs(x[i] - y[i]));
        }

        return max;
    }

    private static double ChromaDistance(byte[] a, byte[] b)
    {
        double sum = 0;
        for (var i = 0; i < a.Length; i += 3)
        {
            var (cba, cra) = Chroma(a, i);
            var (cbb, crb) = Chroma(b, i);
            sum += Math.Abs(cba - cbb) + Math.Abs(cra - crb);
        }

        return sum / (a.Length / 3);
    }

    private static (double Cb, double Cr) Chroma(byte[] p, int i) =>
        (-0.168736 * p[i] - 0.331264 * p[i + 1] + 0.5 * p[i + 2], 0.5 * p[i] - 0.418688 * p[i + 1] - 0.081312 * p[i + 2]);
}
