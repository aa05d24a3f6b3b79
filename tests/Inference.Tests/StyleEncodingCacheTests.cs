namespace MambaSt.Batch.Inference.Tests;

public class StyleEncodingCacheTests
{
    private const int Bytes = 4 * 4 * 8 * sizeof(float); // one 4x4 grid of 8-d tokens

    private static StyleEncoding Encoding(float value) => new(Enumerable.Repeat(value, 4 * 4 * 8).ToArray(), 4, 4, 8, "m@1");

    private static StyleCacheKey Key(string hash) => new(hash, "m@1", 4, 4);

    [Fact]
    public void A_second_lookup_is_a_hit_and_does_not_encode()
    {
        var cache = new StyleEncodingCache(10 * Bytes);
        var encodes = 0;

        var first = cache.GetOrAdd(Key("a"), _ => { encodes++; return Encoding(1); });
        var second = cache.GetOrAdd(Key("a"), _ => { encodes++; return Encoding(2); });

        second.ShouldBeSameAs(first);
        encodes.ShouldBe(1);
        (cache.Hits, cache.Misses).ShouldBe((1L, 1L));
        cache.CurrentBytes.ShouldBe(Bytes);
    }

    [Fact]
    public void The_grid_size_is_part_of_the_key()
    {
        var cache = new StyleEncodingCache(10 * Bytes);
        cache.GetOrAdd(Key("a"), _ => Encoding(1));
        cache.GetOrAdd(Key("a") with { GridWidth = 5 }, _ => Encoding(2)).Tokens.Span[0].ShouldBe(2f);
        cache.Misses.ShouldBe(2);
    }

    [Fact]
    public void The_least_recently_used_entry_is_evicted_to_stay_within_the_byte_bound()
    {
        var cache = new StyleEncodingCache(2 * Bytes);
        cache.GetOrAdd(Key("a"), _ => Encoding(1));
        cache.GetOrAdd(Key("b"), _ => Encoding(2));
        cache.GetOrAdd(Key("a"), _ => Encoding(9)); // a is now most recent
        cache.GetOrAdd(Key("c"), _ => Encoding(3)); // evicts b

        cache.Count.ShouldBe(2);
        cache.CurrentBytes.ShouldBeLessThanOrEqualTo(2 * Bytes);
        cache.Evictions.ShouldBe(1);
        cache.GetOrAdd(Key("a"), _ => Encoding(9)).Tokens.Span[0].ShouldBe(1f);
        cache.GetOrAdd(Key("b"), _ => Encoding(7)).Tokens.Span[0].ShouldBe(7f);
    }

    [Fact]
    public void An_encoding_larger_than_the_cache_is_returned_but_not_kept()
    {
        var cache = new StyleEncodingCache(Bytes - 1);
        cache.GetOrAdd(Key("a"), _ => Encoding(1)).Tokens.Span[0].ShouldBe(1f);
        cache.Count.ShouldBe(0);
        cache.CurrentBytes.ShouldBe(0);
    }

    [Fact]
    public async Task Concurrent_misses_for_one_key_encode_once()
    {
        var cache = new StyleEncodingCache(10 * Bytes);
        var encodes = 0;
        using var release = new ManualResetEventSlim();
        var started = new TaskCompletionSource();

        var tasks = Enumerable.Range(0, 8).Select(_ => Task.Run(() => cache.GetOrAdd(Key("a"), _ =>
        {
            Interlocked.Increment(ref encodes);
            started.TrySetResult();
            release.Wait(TimeSpan.FromSeconds(10));
            return Encoding(1);
        }), TestContext.Current.CancellationToken)).ToArray();
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        await Task.Delay(100, TestContext.Current.CancellationToken);
        release.Set();
        var results = await Task.WhenAll(tasks);

        encodes.ShouldBe(1);
        results.ShouldAllBe(r => ReferenceEquals(r, results[0]));
        cache.Misses.ShouldBe(1);
        cache.Hits.ShouldBe(7);
    }

    [Fact]
    public void A_failed_encoding_is_not_cached_and_the_next_call_retries()
    {
        var cache = new StyleEncodingCache(10 * Bytes);

        Should.Throw<InvalidOperationException>(() => cache.GetOrAdd(Key("a"), _ => throw new InvalidOperationException("boom")));
        cache.GetOrAdd(Key("a"), _ => Encoding(5)).Tokens.Span[0].ShouldBe(5f);
        cache.Count.ShouldBe(1);
    }

    [Fact]
    public void GetOrEncode_hashes_pixels_and_reuses_the_engine_encoding()
    {
        var engine = Golden.Engine("sequential");
        var cache = new StyleEncodingCache(1 << 20);
        var style = Golden.SmoothImage(40, 32, 3);
        var sameBytes = new RgbPixels(style.Rgb.ToArray(), 40, 32);

        var first = cache.GetOrEncode(engine, style);
        var second = cache.GetOrEncode(engine, sameBytes);
        var other = cache.GetOrEncode(engine, Golden.SmoothImage(40, 32, 4));

        second.ShouldBeSameAs(first);
        other.ShouldNotBeSameAs(first);
        (cache.Hits, cache.Misses).ShouldBe((1L, 2L));
        StyleEncodingCache.HashPixels(style).Length.ShouldBe(64);
        StyleEncodingCache.HashPixels(style).ShouldNotBe(StyleEncodingCache.HashPixels(new RgbPixels(style.Rgb, 32, 40)));
    }
}
