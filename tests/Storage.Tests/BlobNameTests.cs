namespace MambaSt.Batch.Storage.Tests;

public sealed class BlobNameTests
{
    [Theory]
    [InlineData("a.jpg")]
    [InlineData("batch-1/in/IMG_0001.JPG")]
    [InlineData("été/naïve.jpg")]
    [InlineData("a b/c+d#e.png")]
    [InlineData("100%.jpg")]
    public void Ordinary_names_pass(string name) => BlobName.Problem(name).ShouldBeNull();

    [Theory]
    [InlineData("..", "'..'")]
    [InlineData("a/./b", "'.'")]
    [InlineData("C:/x", "drive letter")]
    [InlineData("a\u202Eb", "invisible")]
    [InlineData("a\uFF0Fb", "looks like")]
    [InlineData("a/b/", "ends with '/'")]
    [InlineData("a./b", "ends with '.'")]
    public void Odd_names_are_refused_with_a_reason(string name, string reason) =>
        BlobName.Problem(name).ShouldNotBeNull().ShouldContain(reason);

    [Fact]
    public void Unpaired_surrogates_are_refused() => BlobName.Problem("a" + (char)0xD800 + "b").ShouldNotBeNull().ShouldContain("surrogate");

    [Fact]
    public void Overlong_names_are_refused() => BlobName.Problem(new string('a', 1025)).ShouldNotBeNull().ShouldContain("longer");
}
