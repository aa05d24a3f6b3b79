using System.Text;

namespace MambaSt.Batch.Imaging.Tests;

/// <summary>Failure messages reach job records, events and logs: they must never carry the input's bytes.</summary>
public sealed class ErrorContentTests
{
    private static readonly VipsImageCodec Codec = new(new ImagingOptions());

    [Fact]
    public void An_unrecognised_file_is_refused_without_echoing_its_bytes()
    {
        var secret = "PASSWORD=hunter2 and the rest of a private file"u8.ToArray();

        var error = Should.Throw<ImageException>(() => Codec.Decode(secret));

        error.Kind.ShouldBe(ImageErrorKind.UnsupportedFormat);
        error.Message.ShouldNotContain(Convert.ToHexString(secret.AsSpan(0, 4)), Case.Insensitive);
        error.Message.ShouldNotContain("PASSWORD");
        error.Message.ShouldNotContain("hunter2");
        error.ToString().ShouldNotContain(Convert.ToHexString(secret.AsSpan(0, 4)), Case.Insensitive);
        error.Message.ShouldContain($"{secret.Length} bytes");
    }

    [Fact]
    public void A_refused_format_is_named_without_echoing_its_bytes()
    {
        var svg = """<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><!-- SECRET-NOTE --></svg>"""u8.ToArray();

        var error = Should.Throw<ImageException>(() => Codec.Decode(svg));

        error.Kind.ShouldBe(ImageErrorKind.UnsupportedFormat);
        error.Message.ShouldNotContain(Convert.ToHexString(svg.AsSpan(0, 4)), Case.Insensitive);
        error.Message.ShouldNotContain("SECRET-NOTE");
        error.Message.ShouldNotContain("<svg");
    }

    [Theory]
    [InlineData(".jpg[Q=90]", ImageErrorKind.Corrupt)]
    [InlineData(".png", ImageErrorKind.Corrupt)]
    [InlineData(".webp[Q=90]", ImageErrorKind.Corrupt)]
    [InlineData(".gif", ImageErrorKind.Corrupt)]
    [InlineData(".avif[Q=60]", ImageErrorKind.Corrupt)]

    // libvips writes the TIFF directory at the end: without it no loader recognises the file.
    [InlineData(".tif", ImageErrorKind.UnsupportedFormat)]
    public void A_damaged_file_is_refused_without_echoing_its_bytes(string suffix, ImageErrorKind kind)
    {
        var whole = ImageCorpus.Save(LimitTests.Noise(128, 128), 128, 128, 3, suffix);
        var damaged = whole.AsSpan(0, whole.Length / 2).ToArray();
        var marker = Encoding.ASCII.GetBytes("SECRET-MARKER-SECRET-MARKER");
        marker.CopyTo(damaged, damaged.Length / 2);

        var error = Should.Throw<ImageException>(() => Codec.Decode(damaged));

        error.Kind.ShouldBe(kind);
        error.Message.ShouldNotContain("SECRET-MARKER");
        error.InnerException.ShouldBeNull("NetVips's raw libvips text would reach any log of the whole exception");
        foreach (var c in error.Message)
        {
            ((int)c).ShouldBeInRange(0x20, 0x7E, $"non-printable or non-ASCII character in: {error.Message}");
        }
    }

    [Fact]
    public void Libvips_warnings_reach_the_log_cleaned_of_what_the_file_said()
    {
        var profile = Encoding.ASCII.GetBytes("'SECRET-PROFILE' 4D414D4241535420 ".PadRight(200, 'x'));
        var bytes = ImageCorpus.WithIccSegment(ImageCorpus.QuadrantFile(".jpg[Q=95]"), profile);
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var previous = VipsLibrary.WarningSink;
        VipsLibrary.WarningSink = seen.Enqueue;
        try
        {
            Codec.Decode(bytes).ShouldShowQuadrants(tolerance: 12);
        }
        finally
        {
            VipsLibrary.WarningSink = previous;
        }

        // Other tests run in parallel and may add their own warnings; this one's must be among them.
        seen.ShouldContain(text => text.Contains("corrupt profile", StringComparison.Ordinal));
        seen.ShouldAllBe(text => !text.Contains("SECRET") && !text.Contains("4D414D42"));
    }

    [Theory]
    [InlineData("unable to call thumbnail_buffer\nheifload: unsupported brand 'qt  '\n", "heifload: unsupported brand <redacted>")]
    [InlineData("tiff2vips: unknown tag \"PRIVATE-NAME\" value 0x1F2E3D", "tiff2vips: unknown tag <redacted> value <redacted>")]
    [InlineData("jpegload: data 4D414D4241535420 follows", "jpegload: data <redacted> follows")]
    [InlineData("VipsJpeg: Premature end of input file\nVipsJpeg: Premature end of input file", "VipsJpeg: Premature end of input file")]
    [InlineData("pngload: image is 60000 x 60000, libpng doesn't read it", "pngload: image is 60000 x 60000, libpng doesn't read it")]
    [InlineData("gifload: bad name caf\u00e9\u0007", "gifload: bad name caf??")]
    [InlineData("unable to call thumbnail_buffer\n", "no detail from libvips")]
    public void Libvips_text_keeps_its_wording_and_loses_what_it_may_have_quoted(string raw, string expected)
    {
        VipsDiagnosis.Clean(raw).ShouldBe(expected);
    }

    [Fact]
    public void Libvips_text_is_capped()
    {
        VipsDiagnosis.Clean(new string('a', 1000) + " end").Length.ShouldBeLessThanOrEqualTo(203);
    }
}
