using System.Reflection;
using System.Runtime.InteropServices;

namespace MambaSt.Batch.Imaging.Interop;

/// <summary>Loads libvips once per process and configures it. Prefers the self-contained
/// <c>libvips-cpp.so.8.18.*</c> copied next to the application (npm <c>@img/sharp-libvips-linux-x64</c>),
/// else Debian's <c>libvips.so.42</c>. All members are thread-safe.</summary>
internal static class VipsLibrary
{
    private static readonly Lock Gate = new();
    private static bool resolverSet;
    private static bool initialized;
    private static string? loadedFrom;

    /// <summary>The file libvips was loaded from, once <see cref="EnsureInitialized"/> has run.</summary>
    public static string? LoadedFrom => loadedFrom;

    /// <summary>Initializes libvips on first call; later calls only update concurrency.
    /// The operation cache is disabled so memory stays flat across many images.</summary>
    public static void EnsureInitialized(int concurrency)
    {
        lock (Gate)
        {
            if (!resolverSet)
            {
                NativeLibrary.SetDllImportResolver(typeof(VipsLibrary).Assembly, Resolve);
                resolverSet = true;
            }

            if (!initialized)
            {
                if (VipsNative.Init("mambast") != 0)
                {
                    throw new InvalidOperationException($"vips_init failed: {VipsErrors.Take()}");
                }

                VipsNative.CacheSetMax(0);
                VipsNative.CacheSetMaxMem(0);
                VipsNative.CacheSetMaxFiles(0);
                VipsNative.BlockUntrustedSet(1);
                initialized = true;
            }

            VipsNative.ConcurrencySet(concurrency);
        }
    }

    /// <summary>True from libvips 8.15, whose savers take "keep=..." (what metadata to write) instead of "strip".</summary>
    public static bool HasKeepOption => VipsNative.Version(0) > 8 || (VipsNative.Version(0) == 8 && VipsNative.Version(1) >= 15);

    /// <summary>vips_thumbnail's output ICC profile option: "output_profile" on the libvips we ship (8.18);
    /// older ones such as Debian's 8.14 only know "export_profile", which 8.18 keeps as a deprecated alias.</summary>
    public static string ThumbnailOutputProfileOption =>
        VipsNative.Version(0) > 8 || (VipsNative.Version(0) == 8 && VipsNative.Version(1) >= 18) ? "output_profile" : "export_profile";

    /// <summary>The libvips version as "major.minor.micro".</summary>
    public static string Version => $"{VipsNative.Version(0)}.{VipsNative.Version(1)}.{VipsNative.Version(2)}";

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != VipsNative.Library)
        {
            return IntPtr.Zero;
        }

        foreach (var candidate in Candidates())
        {
            if (NativeLibrary.TryLoad(candidate, out var handle))
            {
                loadedFrom = candidate;
                return handle;
            }
        }

        throw new DllNotFoundException(
            "libvips not found: expected libvips-cpp.so.8.18.* next to the application " +
            "(npm @img/sharp-libvips-linux-x64) or libvips.so.42 (apt install libvips42)");
    }

    private static IEnumerable<string> Candidates()
    {
        var baseDir = AppContext.BaseDirectory;
        if (Directory.Exists(baseDir))
        {
            foreach (var file in Directory.EnumerateFiles(baseDir, "libvips-cpp.so.8.*").Order(StringComparer.Ordinal).Reverse())
            {
                yield return file;
            }
        }

        yield return "libvips.so.42";
    }
}

internal static class VipsErrors
{
    /// <summary>Reads and clears libvips's process-wide error buffer. Under concurrent failures the
    /// text may include another thread's message; the exception kind never depends on it.</summary>
    public static string Take()
    {
        var text = Marshal.PtrToStringUTF8(VipsNative.ErrorBuffer())?.Trim() ?? string.Empty;
        VipsNative.ErrorClear();
        return text.Length == 0 ? "no detail from libvips" : text.Replace('\n', ' ');
    }
}
