namespace MambaSt.Batch.Storage.Tests;

public sealed class LocationTests
{
    [Fact]
    public void Az_scheme_names_container_and_path_on_the_configured_account()
    {
        var location = StorageLocation.Parse("az://photos/2024/summer/a.jpg");

        location.Kind.ShouldBe(StorageLocationKind.Azure);
        location.AccountEndpoint.ShouldBeNull();
        location.Container.ShouldBe("photos");
        location.Path.ShouldBe("2024/summer/a.jpg");
        location.ToString().ShouldBe("az://photos/2024/summer/a.jpg");
    }

    [Fact]
    public void Account_urls_are_host_style_and_emulator_urls_path_style()
    {
        var cloud = StorageLocation.Parse("https://acct.blob.core.windows.net/out/batch%201/a.jpg");
        var azurite = StorageLocation.Parse("http://127.0.0.1:10000/devstoreaccount1/inputs/x/y.png");

        cloud.AccountEndpoint.ShouldBe(new Uri("https://acct.blob.core.windows.net"));
        cloud.Container.ShouldBe("out");
        cloud.Path.ShouldBe("batch 1/a.jpg");
        azurite.AccountEndpoint.ShouldBe(new Uri("http://127.0.0.1:10000/devstoreaccount1"));
        azurite.Container.ShouldBe("inputs");
        azurite.Path.ShouldBe("x/y.png");
    }

    [Fact]
    public void A_sas_url_keeps_its_query_as_credential_and_never_prints_the_signature()
    {
        const string url = "https://acct.blob.core.windows.net/inputs/a.jpg?sv=2021-08-06&sp=r&se=2030-01-01&sig=SECRETSIGNATURE%3D";

        var location = StorageLocation.Parse(url);

        location.HasSas.ShouldBeTrue();
        location.Path.ShouldBe("a.jpg");
        location.ToString().ShouldNotContain("SECRETSIGNATURE");
        StorageLocation.Redact(url).ShouldNotContain("SECRETSIGNATURE");
        StorageLocation.Redact(url).ShouldContain("sig=<redacted>");
    }

    [Theory]
    [InlineData("/data/in/a.jpg", "/data/in/a.jpg")]
    [InlineData("file:///data/in/a.jpg", "/data/in/a.jpg")]
    [InlineData("in/a.jpg", "in/a.jpg")]
    public void Local_paths_and_file_uris_are_local(string text, string path)
    {
        var location = StorageLocation.Parse(text);

        location.Kind.ShouldBe(StorageLocationKind.Local);
        location.Path.ShouldBe(path);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("s3://bucket/a.jpg", "unsupported scheme")]
    [InlineData("az://Photos/a.jpg", "container name")]
    [InlineData("az://photos/../a.jpg", "'..'")]
    [InlineData("https://acct.blob.core.windows.net/inputs/%2e%2e/a.jpg", "'..'")]
    [InlineData("https://acct.blob.core.windows.net/inputs/a%2Fb.jpg", "encoded '/'")]
    [InlineData("https://acct.blob.core.windows.net/inputs/a%252e.jpg", "percent-encoded")]
    [InlineData("in/../../etc/passwd", "'..'")]
    [InlineData("/data/../etc/passwd", "'..'")]
    [InlineData("in\\a.jpg", "backslash")]
    [InlineData("file://otherhost/a.jpg", "not a local")]
    public void Bad_locations_are_refused_with_a_reason(string text, string reason)
    {
        var e = Should.Throw<StorageException>(() => StorageLocation.Parse(text));

        e.Kind.ShouldBe(StorageErrorKind.InvalidName);
        e.Message.ShouldContain(reason);
    }

    [Fact]
    public void A_refused_sas_url_does_not_leak_its_signature()
    {
        var e = Should.Throw<StorageException>(() => StorageLocation.Parse("https://acct.blob.core.windows.net/BAD/a.jpg?sv=1&sig=TOPSECRET"));

        e.Message.ShouldNotContain("TOPSECRET");
    }
}
