using MambaSt.Batch.Storage;
using MambaSt.Batch.Storage.AzureBlobs;
using MambaSt.Batch.Submitter.Storage;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary>References carried in messages parse back to the blob they were made for. The stores are built
/// directly, from fixed settings (<see cref="ArchiveStores"/> reads the process environment).</summary>
public class BlobRefTests
{
    private const string Sas = "sv=2021-08-06&sr=c&sp=racwl&se=2030-01-01T00%3A00%3A00Z&sig=SIGNATURE%3D";

    [Theory]
    [InlineData("a#b/c?.jpg")]
    [InlineData("trip/IMG#12.jpg")]
    [InlineData("what?.jpg")]
    [InlineData("100% & more/x+y=z.jpg")]
    public void A_sas_url_ref_of_a_name_with_url_delimiters_parses_back_to_that_name_and_keeps_the_sas(string name)
    {
        var store = Store($"http://127.0.0.1:10100/devstoreaccount1/out/stylized?{Sas}");

        var reference = store.RefFor(name);
        var parsed = StorageLocation.Parse(reference);

        parsed.Container.ShouldBe("out");
        parsed.Path.ShouldBe("stylized/" + name);
        parsed.HasSas.ShouldBeTrue();
        reference.ShouldEndWith("?" + Sas);
    }

    [Fact]
    public void An_az_ref_carries_the_name_as_it_is()
    {
        var store = Store("az://out/stylized");

        var reference = store.RefFor("a#b/c?.jpg");

        reference.ShouldBe("az://out/stylized/a#b/c?.jpg");
        StorageLocation.Parse(reference).Path.ShouldBe("stylized/a#b/c?.jpg");
    }

    private static BlobArchiveStore Store(string location)
    {
        var endpoint = new Uri("http://127.0.0.1:10100/devstoreaccount1");
        var blobs = new AzureBlobStore(BlobAccount.WithSas(endpoint, Sas), "out", new StorageOptions());
        return new BlobArchiveStore(location, new StorageTarget(blobs, "stylized"));
    }
}
