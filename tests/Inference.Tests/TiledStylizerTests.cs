using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Inference.Tests;

public class TiledStylizerTests
{
    /// <summary>Returns each tile filled with a value that depends on the tile's position, or the tile itself.</summary>
    private sealed class FakeStylizer(bool identity) : IStylizer
    {
        public List<int> BatchSizes { get; } = [];

        public ModelInfo Model { get; } = new()
        {
            Id = "fake", Version = "1", Config = "tiny", ScanVariant = "sequential", DModel = 8, Provenance = "", License = "",
        };

        public int MaxSide => 64;

        /// <summary>Called after each run is counted (e.g. to cancel the token of the tiled call).</summary>
        public Action? AfterRun { get; set; }

        public IReadOnlyList<StylizedImage> Stylize(StyleEncoding style, IReadOnlyList<ContentItem> batch, CancellationToken cancellationToken = default)
        {
            lock (BatchSizes)
            {
                BatchSizes.Add(batch.Count);
            }

            AfterRun?.Invoke();

            return batch.Select(item =>
            {
                var rgb = item.Content.Rgb.ToArray();
                if (!identity)
                {
                    // a constant per tile, 40 levels apart between neighbours: the worst seam a model could produce
                    var level = (byte)(60 + 40 * ((rgb[0] + rgb[1]) % 4));
                    Array.Fill(rgb, level);
                }

                return new StylizedImage { Pixels = new RgbPixels(rgb, item.Content.Width, item.Content.Height), Seed = item.Seed, Strength = item.Strength };
            }).ToList();
        }
    }

    private static InferenceOptions Tiles(int size, int overlap, int batch) => new() { ModelDirectory = "unused", TileSize = size, TileOverlap = overlap, TileBatchSize = batch };

    private static readonly StyleEncoding Style = new(new float[8], 1, 1, 8, "fake@1");

    [Theory]
    [InlineData(64, 64, 16, new[] { 0 })]
    [InlineData(100, 64, 16, new[] { 0, 36 })]
    [InlineData(200, 64, 16, new[] { 0, 48, 96, 136 })]
    public void Tiles_step_by_size_minus_overlap_and_end_flush(int length, int size, int overlap, int[] expected)
    {
        TiledStylizer.TileStarts(length, size, overlap).ShouldBe(expected);
    }

    [Fact]
    public void An_identity_model_gives_back_the_input_exactly()
    {
        var fake = new FakeStylizer(identity: true);
        var image = Golden.SmoothImage(150, 90, 1);

        var result = new TiledStylizer(fake, Tiles(64, 16, 3)).Stylize(Style, new ContentItem { Content = image, Seed = 1 }, TestContext.Current.CancellationToken);

        result.Pixels.Rgb.ToArray().ShouldBe(image.Rgb.ToArray());
        fake.BatchSizes.Sum().ShouldBe(3 * 2);
        fake.BatchSizes.ShouldAllBe(b => b <= 3);
    }

    [Fact]
    public void Seams_between_tiles_of_different_levels_are_ramps_across_the_overlap()
    {
        var fake = new FakeStylizer(identity: false);
        var rgb = new byte[3 * 200 * 120];
        for (var p = 0; p < 200 * 120; p++)
        {
            rgb[3 * p] = (byte)(p % 200 / 10);
            rgb[3 * p + 1] = (byte)(p / 200 / 10);
        }

        var result = new TiledStylizer(fake, Tiles(64, 16, 4)).Stylize(Style, new ContentItem { Content = new RgbPixels(rgb, 200, 120), Seed = 1 }, TestContext.Current.CancellationToken);

        // neighbouring tiles differ by up to 120 levels; blended over 16 px the step between adjacent pixels stays small
        MaxAdjacentStep(result.Pixels).ShouldBeLessThanOrEqualTo(120 / 16 + 2);
    }

    [Fact]
    public void A_uniform_image_through_the_tiny_model_has_bounded_seams()
    {
        var engine = Golden.Engine("sequential");
        var style = engine.EncodeStyle(Golden.SmoothImage(64, 64, 2));
        var uniform = new byte[3 * 160 * 96];
        Array.Fill(uniform, (byte)128);
        var item = new ContentItem { Content = new RgbPixels(uniform, 160, 96), Seed = 3 };

        var tiled = new TiledStylizer(engine, Tiles(64, 16, 4)).Stylize(style, item, TestContext.Current.CancellationToken).Pixels;
        var whole = engine.Stylize(style, [item], TestContext.Current.CancellationToken)[0].Pixels;

        (tiled.Width, tiled.Height).ShouldBe((160, 96));
        // Tiles see their own borders and the same style statistics; blending must not add steps larger than the
        // model's own pixel-to-pixel variation on the same image.
        MaxAdjacentStep(tiled).ShouldBeLessThanOrEqualTo(MaxAdjacentStep(whole) + 4);
    }

    [Fact]
    public void Cancellation_stops_before_the_next_tile_batch()
    {
        using var cts = new CancellationTokenSource();
        var fake = new FakeStylizer(identity: true) { AfterRun = cts.Cancel };
        var image = Golden.SmoothImage(200, 120, 1);

        Should.Throw<OperationCanceledException>(() => new TiledStylizer(fake, Tiles(64, 16, 2)).Stylize(Style, new ContentItem { Content = image, Seed = 1 }, cts.Token));

        // 4 x 3 tiles in batches of 2: six runs without cancellation; the first one cancelled, so no second.
        fake.BatchSizes.ShouldBe([2]);
    }

    [Fact]
    public void Images_small_enough_for_one_run_are_not_tiled()
    {
        var fake = new FakeStylizer(identity: true);
        new TiledStylizer(fake, Tiles(64, 16, 4)).Stylize(Style, new ContentItem { Content = Golden.SmoothImage(60, 40, 1), Seed = 1 }, TestContext.Current.CancellationToken);
        fake.BatchSizes.ShouldBe([1]);
    }

    [Fact]
    public void Images_beyond_the_tiled_limit_are_ImageTooLarge()
    {
        var huge = new RgbPixels(new byte[3 * 16385 * 1], 16385, 1);
        Should.Throw<InferenceException>(() => new TiledStylizer(new FakeStylizer(true), Tiles(64, 16, 4)).Stylize(Style, new ContentItem { Content = huge, Seed = 1 }))
            .Code.ShouldBe(StylizationErrorCode.ImageTooLarge);
    }

    private static int MaxAdjacentStep(RgbPixels image)
    {
        var rgb = image.Rgb.Span;
        var max = 0;
        for (var y = 0; y < image.Height; y++)
        {
            for (var x = 0; x < image.Width; x++)
            {
                var p = 3 * (y * image.Width + x);
                for (var c = 0; c < 3; c++)
                {
                    if (x + 1 < image.Width)
                    {
                        max = Math.Max(max, Math.Abs(rgb[p + c] - rgb[p + 3 + c]));
                    }

                    if (y + 1 < image.Height)
                    {
                        max = Math.Max(max, Math.Abs(rgb[p + c] - rgb[p + 3 * image.Width + c]));
                    }
                }
            }
        }

        return max;
    }
}
