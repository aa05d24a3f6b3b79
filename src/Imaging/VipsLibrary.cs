using NetVips;

namespace MambaSt.Batch.Imaging;

/// <summary>Process-wide libvips settings, applied through NetVips. All members are thread-safe.</summary>
internal static class VipsLibrary
{
    private static readonly Lock Gate = new();

    /// <summary>Receives libvips's warnings (e.g. "corrupt profile"), already cleaned of anything they may have
    /// quoted from the input; standard error by default, which is the container's log.</summary>
    internal static Action<string> WarningSink { get; set; } = text => Console.Error.WriteLine($"libvips warning: {text}");

    // Held here so the delegate NetVips hands to glib is never collected.
    private static readonly Log.LogDelegate Handler = OnLog;
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

                // glib would print these to standard error verbatim; info and debug stay off as before.
                Log.SetLogHandler("VIPS", Enums.LogLevelFlags.Warning | Enums.LogLevelFlags.Message | Enums.LogLevelFlags.Critical, Handler);
                configured = true;
            }

            NetVips.NetVips.Concurrency = concurrency;
        }
    }

    private static void OnLog(string? domain, Enums.LogLevelFlags level, string? message) =>
        WarningSink(VipsDiagnosis.Clean(message ?? string.Empty));

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
