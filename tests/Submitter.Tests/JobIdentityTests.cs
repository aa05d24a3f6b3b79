using MambaSt.Batch.Contracts;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Jobs;

namespace MambaSt.Batch.Submitter.Tests;

public class JobIdentityTests
{
    private const string Content = "file:a/b.jpg:sha256:00ff";
    private const string Style = "style:sha256:abcd";

    [Fact]
    public void Name_based_uuid_matches_the_RFC_9562_version_5_example()
    {
        var dns = new Guid("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
        JobIdentity.NameBased(dns, "www.example.com").ShouldBe(new Guid("2ed6657d-e927-568b-95e1-2665a8aea6a2"));
    }

    [Fact]
    public void The_same_content_style_and_options_give_the_same_id()
    {
        var a = JobIdentity.JobId(Content, Style, new StylizeOptions { Seed = 3 });
        var b = JobIdentity.JobId(Content, Style, new StylizeOptions { Seed = 3 });
        a.ShouldBe(b);
        (a.ToByteArray(bigEndian: true)[6] >> 4).ShouldBe(5);
    }

    public static TheoryData<StylizeOptions> ChangedOptions => new()
    {
        new StylizeOptions { MaxSide = 512 },
        new StylizeOptions { Format = OutputFormat.Png },
        new StylizeOptions { Quality = 80 },
        new StylizeOptions { Seed = 1 },
        new StylizeOptions { Strength = 0.5f },
        new StylizeOptions { PreserveColor = true },
    };

    [Theory]
    [MemberData(nameof(ChangedOptions))]
    public void Any_option_change_gives_another_id(StylizeOptions changed)
    {
        JobIdentity.JobId(Content, Style, changed).ShouldNotBe(JobIdentity.JobId(Content, Style, new StylizeOptions()));
    }

    [Fact]
    public void Content_or_style_change_gives_another_id()
    {
        var baseline = JobIdentity.JobId(Content, Style, new StylizeOptions());
        JobIdentity.JobId("file:a/b.jpg:sha256:00fe", Style, new StylizeOptions()).ShouldNotBe(baseline);
        JobIdentity.JobId("file:a/c.jpg:sha256:00ff", Style, new StylizeOptions()).ShouldNotBe(baseline);
        JobIdentity.JobId(Content, "style:sha256:abce", new StylizeOptions()).ShouldNotBe(baseline);
    }

    [Fact]
    public void Blob_identity_uses_size_and_etag_or_md5()
    {
        var etag = JobIdentity.BlobContentIdentity("in/a.jpg", 10, "\"0x1\"", null);
        JobIdentity.BlobContentIdentity("in/a.jpg", 10, "\"0x2\"", null).ShouldNotBe(etag);
        JobIdentity.BlobContentIdentity("in/a.jpg", 11, "\"0x1\"", null).ShouldNotBe(etag);
        JobIdentity.BlobContentIdentity("in/a.jpg", 10, "\"0x2\"", "md5").ShouldBe(JobIdentity.BlobContentIdentity("in/a.jpg", 10, "\"0x1\"", "md5"));
    }

    [Theory]
    [InlineData("a/b.JPG", OutputFormat.Webp, "a/b.webp")]
    [InlineData("b.tar.png", OutputFormat.Jpeg, "b.tar.jpg")]
    [InlineData("dir.v2/noext", OutputFormat.Png, "dir.v2/noext.png")]
    public void Output_names_keep_the_relative_path_and_take_the_format_extension(string input, OutputFormat format, string expected)
    {
        JobIdentity.OutputName(input, format).ShouldBe(expected);
    }

    [Fact]
    public void Batch_ids_are_derived_and_short()
    {
        var id = JobIdentity.BatchId("/photos", Style, new StylizeOptions());
        id.ShouldMatch("^b-[0-9a-f]{12}$");
        JobIdentity.BatchId("/photos", Style, new StylizeOptions()).ShouldBe(id);
        JobIdentity.BatchId("/photos2", Style, new StylizeOptions()).ShouldNotBe(id);
    }

    [Fact]
    public void Output_names_that_differ_only_in_case_clash_where_names_ignore_case()
    {
        JobRecord Job(string path) => new()
        {
            JobId = Guid.NewGuid(), RelativePath = path, ContentRef = path, OutputRef = JobIdentity.OutputName(path, OutputFormat.Jpeg),
            OutputPath = JobIdentity.OutputName(path, OutputFormat.Jpeg),
        };
        JobRecord[] jobs = [Job("trip/a.jpg"), Job("trip/A.png")];

        Should.NotThrow(() => JobIdentity.EnsureDistinctOutputs(jobs, OutputFormat.Jpeg, ignoreCase: false));
        var clash = Should.Throw<UsageException>(() => JobIdentity.EnsureDistinctOutputs(jobs, OutputFormat.Jpeg, ignoreCase: true));
        clash.Message.ShouldContain("'trip/A.png', 'trip/a.jpg'");
        JobIdentity.NamesIgnoreCase(localOutput: false).ShouldBeFalse();
    }
}
