namespace MambaSt.Batch.Inference.Tests;

/// <summary>ONNX Runtime from C# reproduces the PyTorch golden tensors for both graphs and both scan variants.</summary>
public class GoldenParityTests
{
    public static TheoryData<string, string> VariantsAndCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var variant in new[] { "sequential", "parallel" })
        {
            foreach (var name in Golden.CaseNames)
            {
                data.Add(variant, name);
            }
        }

        return data;
    }

    [Fact]
    public void Manifest_lists_the_three_cases_and_tolerance_1e_4()
    {
        Golden.CaseNames.ShouldBe(["square_64x64", "nonsquare_64x96_style_48x80", "batch2_strength_1_and_0.5"], ignoreOrder: true);
        Golden.Tolerance.ShouldBe(1e-4);
    }

    [Theory]
    [MemberData(nameof(VariantsAndCases))]
    public void Style_encoder_matches_pytorch(string variant, string caseName)
    {
        var engine = Golden.Engine(variant);
        var style = Golden.Load(caseName, "style");
        var expected = Golden.Load(caseName, "style_tokens");

        var (tokens, count) = engine.RunStyleEncoder(style.Floats(), (int)style.Shape[0], (int)style.Shape[2], (int)style.Shape[3]);

        count.ShouldBe((int)expected.Shape[1]);
        Golden.MaxAbsDiff(tokens, expected.Floats()).ShouldBeLessThan(Golden.TokenTolerance);
    }

    [Theory]
    [MemberData(nameof(VariantsAndCases))]
    public void Stylizer_matches_pytorch(string variant, string caseName)
    {
        var engine = Golden.Engine(variant);
        var content = Golden.Load(caseName, "content");
        var tokens = Golden.Load(caseName, "style_tokens");
        var index = Golden.Load(caseName, "style_index");
        var strength = Golden.Load(caseName, "strength");
        var expected = Golden.Load(caseName, "stylized").Floats();
        int b = (int)content.Shape[0], h = (int)content.Shape[2], w = (int)content.Shape[3];

        float[] actual = [];
        engine.RunStylizer(content.Floats(), b, h, w, tokens.Floats(), (int)tokens.Shape[1], index.Int64s(), strength.Floats(),
            output => actual = output.ToArray(), TestContext.Current.CancellationToken);

        actual.Length.ShouldBe(expected.Length);
        Golden.MaxAbsDiff(actual, expected).ShouldBeLessThan(Golden.Tolerance);
    }

    [Theory]
    [MemberData(nameof(VariantsAndCases))]
    public void Style_index_from_the_case_seeds_equals_the_golden_index(string variant, string caseName)
    {
        _ = variant;
        var c = Golden.Case(caseName);
        var seeds = c.GetProperty("style_index_seeds").EnumerateArray().Select(s => s.GetUInt64()).ToArray();
        int ls = c.GetProperty("ls").GetInt32(), l = c.GetProperty("l").GetInt32();
        var expected = Golden.Load(caseName, "style_index").Int64s();

        var actual = seeds.SelectMany(seed => StyleIndex.Generate(seed, ls, l)).ToArray();

        actual.ShouldBe(expected);
    }

    [Fact]
    public void Batch_of_two_with_strength_half_differs_from_strength_one_by_more_than_the_tolerance()
    {
        var expected = Golden.Load("batch2_strength_1_and_0.5", "stylized").Floats();
        var half = expected.Length / 2;
        Golden.MaxAbsDiff(expected.AsSpan(0, half), expected.AsSpan(half)).ShouldBeGreaterThan(1e-2);
    }

    [Fact]
    public void Model_info_comes_from_the_graph_metadata()
    {
        var model = Golden.Engine("parallel").Model;
        model.Id.ShouldBe("mambast-tiny");
        model.Version.ShouldBe("golden");
        model.Config.ShouldBe("tiny");
        model.ScanVariant.ShouldBe("parallel");
        model.DModel.ShouldBe(32);
        model.Provenance.ShouldBe("random-init seed 7");
        Golden.Engine("sequential").Model.ScanVariant.ShouldBe("sequential");
    }
}
