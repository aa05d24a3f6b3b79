using NetVips;

namespace MambaSt.Batch.Imaging;

/// <summary>Process-wide libvips settings, applied through NetVips. All members are thread-safe.</summary>
internal static class VipsLibrary
{
    private static readonly Lock Gate = new();
    private static bool configured;

    /// <summary>Checks that NetVips loaded libvips, then on first call bounds the operation cache and blocks
    /// untrusted loaders; every call sets the worker-thread count.</summary>
    public static void EnsureInitialized(int concurrency)
    {
        lock (Gate)
        {
            if (!ModuleInitializer.VipsInitialized)
            {
                throw new InvalidOperationException(
                    "libvips could not be loaded: the NetVips.Native.linux-x64 package's libvips.so.42 must be under " +
                    "runtimes/linux-x64/native next to the application",
                    ModuleInitializer.Exception);
            }

            if (!configured)
            {
                // A long-running worker sees every image once: a cache would only hold memory and open files.
                Cache.Max = 0;
                Cache.MaxMem = 0;
                Cache.MaxFiles = 0;

                // Loaders libvips flags as unsafe for hostile input (SVG, CSV, matrix, raw, .v files) refuse to run.
                NetVips.NetVips.BlockUntrusted = true;
                configured = true;
            }

            NetVips.NetVips.Concurrency = concurrency;
        }
    }

    /// <summary>The libvips version as "major.minor.micro".</summary>
    public static string Version =>
        $"{NetVips.NetVips.Version(0)}.{NetVips.NetVips.Version(1)}.{NetVips.NetVips.Version(2)}";

    /// <summary>The file libvips was mapped from (read from /proc/self/maps), or null where that is not readable.</summary>
    public static string? LoadedFrom
    {
        get
        {
            try
            {
                return File.ReadLines("/proc/self/maps")
                    .Select(line => line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries))
                    .Where(fields => fields.Length == 6)
                    .Select(fields => fields[5].Trim())
                    .FirstOrDefault(path => Path.GetFileName(path).StartsWith("libvips.so", StringComparison.Ordinal));
            }
            catch (IOException)
            {
                return null;
            }
            catch (UnauthorizedAccessException)
            {
                return null;
            }
        }
    }
}
