namespace MambaSt.Batch.Inference.Tests;

public class StyleIndexTests
{
    [Fact]
    public void SplitMix64_of_zero_yields_the_reference_vectors()
    {
        var rng = new SplitMix64(0);
        rng.Next().ShouldBe(0xE220A8397B1DCDAFUL);
        rng.Next().ShouldBe(0x6E789E6AA1B965F4UL);
        rng.Next().ShouldBe(0x06C45D188009454FUL);
    }

    [Fact]
    public void Readme_example_seed_42()
    {
        StyleIndex.Generate(42, 10, 10).ShouldBe([0L, 9, 5, 8, 6, 4, 7, 2, 1, 3]);
    }

    public static TheoryData<int> ManifestCases() =>
        [.. Enumerable.Range(0, Golden.Manifest.GetProperty("style_index_cases").GetArrayLength())];

    [Theory]
    [MemberData(nameof(ManifestCases))]
    public void Equals_the_golden_style_index_case(int number)
    {
        var c = Golden.Manifest.GetProperty("style_index_cases")[number];
        var seed = c.GetProperty("seed").GetUInt64();
        int ls = c.GetProperty("ls").GetInt32(), l = c.GetProperty("l").GetInt32();
        var expected = Npy.Read(Path.Combine(Golden.Root, c.GetProperty("file").GetString()!)).Int64s();

        var actual = StyleIndex.Generate(seed, ls, l);

        actual.ShouldBe(expected);
        actual.ShouldAllBe(v => v >= 0 && v < ls);
    }

    [Fact]
    public void With_more_style_tokens_than_content_tokens_every_index_is_distinct()
    {
        var index = StyleIndex.Generate(99, 500, 64);
        index.Distinct().Count().ShouldBe(64);
    }
}
