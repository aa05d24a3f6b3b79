using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Submitter.Tests;

public class LocalModeTests
{
    [Fact]
    public async Task Stylize_writes_one_output_per_input_with_the_tiny_model_and_no_servers()
    {
        using var dir = TempDir.WithImages(3, size: 64);
        Environment.SetEnvironmentVariable("Inference__ModelDirectory", Path.Combine(RepoPaths.Fixtures, "golden", "tiny-sequential"));
        var (exit, output, error) = await CliRunner.RunAsync("stylize", dir.Path("in"), "--style", dir.Path("style.png"), "--out", dir.Path("out"), "--format", "png", "--max-side", "64");
        error.ShouldBeEmpty();
        exit.ShouldBe(0);
        output.ShouldContain("3 outputs written");
        output.ShouldContain(dir.Path("out"));
        foreach (var name in new[] { "img0.png", "sub/img1.png", "img2.png" })
        {
            var file = new FileInfo(dir.Path("out/" + name));
            file.Exists.ShouldBeTrue(name);
            file.Length.ShouldBeGreaterThan(0);
        }

        var again = await CliRunner.RunAsync("stylize", dir.Path("in"), "--style", dir.Path("style.png"), "--out", dir.Path("out"), "--format", "png", "--max-side", "64");
        again.Exit.ShouldBe(0);
        again.Out.ShouldContain("0 outputs written, 3 already present");
    }
}
