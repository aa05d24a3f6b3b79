using NetVips;

namespace MambaSt.Batch.Imaging.Tests;

/// <summary>The process-wide libvips state that a long-running worker depends on.</summary>
public sealed class LibraryTests
{
    static LibraryTests() => _ = new VipsImageCodec(new ImagingOptions());

    [Fact]
    public void Loads_the_libvips_of_the_NetVips_native_package_not_the_system_one()
    {
        VipsLibrary.Version.ShouldBe("8.18.7");
        var path = VipsLibrary.LoadedFrom;
        path.ShouldNotBeNull();
        // Under runtimes/linux-x64/native for a portable build, beside the assemblies for a RID-specific one.
        Path.GetFileName(path).ShouldBe("libvips.so.42");
        path.ShouldStartWith(AppContext.BaseDirectory);
        VipsImageCodec.LibraryDescription.ShouldBe($"8.18.7 ({path})");
    }

    [Fact]
    public void The_operation_cache_holds_nothing_between_images()
    {
        Cache.Max.ShouldBe(0);
        Cache.MaxMem.ShouldBe(0UL);
        Cache.MaxFiles.ShouldBe(0);
    }

    [Fact]
    public void Untrusted_loaders_are_blocked_even_when_called_directly()
    {
        var svg = """<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>"""u8.ToArray();
        using (var op = Operation.NewFromName("svgload_buffer"))
        {
            op.GetFlags().HasFlag(Enums.OperationFlags.UNTRUSTED).ShouldBeTrue("the probe must be a loader libvips calls untrusted");
        }

        Should.Throw<VipsException>(() =>
        {
            using var image = Image.SvgloadBuffer(svg);
            return image.Avg();
        });
    }
}
