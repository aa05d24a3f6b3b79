using MambaSt.Batch.Storage;
using MambaSt.Batch.Submitter.Storage;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary>Which references lose their SAS in the batch records and get it back on the jobs sent (retry-failed).</summary>
public class RecordSasTests
{
    private const string Output = "https://acct.blob.core.windows.net/photos/out?sv=2021-08-06&sr=c&sp=racwl&sig=WRITESIG";

    private static BlobArchiveStore Store() => new(Output, new StorageTarget(null!, "out"));

    [Fact]
    public void References_under_the_output_are_recorded_without_the_sas_and_sent_with_it()
    {
        var store = Store();
        var output = store.RefFor("a/b.jpg");

        var recorded = store.ForRecord(output);

        recorded.ShouldBe("https://acct.blob.core.windows.net/photos/out/a/b.jpg");
        store.ForRecord(store.Location).ShouldNotContain("WRITESIG");
        store.ForMessage(recorded).ShouldBe(output);
    }

    [Fact]
    public void References_elsewhere_are_left_as_they_are()
    {
        var store = Store();
        const string source = "https://acct.blob.core.windows.net/inputs/a.jpg?sv=2021-08-06&sp=r&sig=READSIG";
        const string sibling = "https://acct.blob.core.windows.net/photos/outer/a.jpg";

        store.ForRecord(source).ShouldBe(source);
        store.ForMessage("az://styles/s.png").ShouldBe("az://styles/s.png");
        store.ForMessage(sibling).ShouldBe(sibling);
        store.ForRecord("/data/in/a.jpg").ShouldBe("/data/in/a.jpg");
    }
}
