using System.Runtime.InteropServices;
using System.Text.Json;

namespace MambaSt.Batch.Storage.Local;

/// <summary>
/// A folder used as a blob container: same names, listing, create-if-absent and metadata as Azure. Writes go to
/// a hidden temp file in the target folder and are moved into place (without overwrite for create-if-absent), so
/// readers never see half a file. Content type and metadata live in a hidden sidecar <c>.name.meta.json</c>,
/// written (and fsynced) before the data, so data is never visible without its metadata (see <see cref="PutAsync"/>). Names that would leave the root (including through symbolic links) are refused.
/// Thread-safe; concurrent writers of one name resolve to one winner.
/// </summary>
public sealed class LocalFolderStore : IBlobStore
{
    private const string SidecarSuffix = ".meta.json";
    private readonly string _root;
    private readonly int _pageSize;

    public LocalFolderStore(string root, StorageOptions? options = null)
    {
        if (string.IsNullOrWhiteSpace(root) || root.Contains('\0'))
        {
            throw new StorageException(StorageErrorKind.InvalidName, "Local store root is empty or contains NUL.");
        }

        _root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        _pageSize = options?.ListPageSize ?? 1000;
    }

    public string Root => _root;

    public string Description => _root;

    public override string ToString() => Description;

    public Task CreateContainerIfMissingAsync(CancellationToken cancellationToken)
    {
        Guard(null, () => Directory.CreateDirectory(_root));
        return Task.CompletedTask;
    }

    /// <summary>
    /// Writes metadata first and the data second, so no reader ever sees data without its metadata: the sidecar as a
    /// temp file, fsync, moved into place; then the data as a temp file, fsync, moved into place; then the folder is
    /// fsynced so both names survive a power cut. With <see cref="BlobWriteOptions.IfAbsent"/> the sidecar is the claim:
    /// it is linked into place without overwrite, and a writer whose metadata differs from a claim already there gets
    /// <see cref="StorageErrorKind.AlreadyExists"/>. Data without a sidecar (left by a crash of an older version, which
    /// wrote the sidecar second) counts as absent: the writer that claims its sidecar replaces it. A full disk is
    /// <see cref="StorageErrorKind.Unavailable"/> (transient: space may be freed).
    /// </summary>
    public async Task<BlobProperties> PutAsync(string name, Stream content, BlobWriteOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        options ??= new BlobWriteOptions();
        var path = PathOf(name);
        var metadata = AzureBlobs.AzureBlobStore.ValidateMetadata(options.Metadata);
        var contentType = AzureBlobs.AzureBlobStore.ValidContentType(options.ContentType);
        var directory = Path.GetDirectoryName(path)!;
        Guard(name, () => Directory.CreateDirectory(directory));
        PathOf(name);

        var sidecarPath = SidecarPath(path);
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        var sidecarTemp = $"{sidecarPath}.{Guid.NewGuid():N}.tmp";
        long length;
        var claimed = false;
        try
        {
            await WriteDurableAsync(sidecarTemp, JsonSerializer.SerializeToUtf8Bytes(new Sidecar { ContentType = contentType, Metadata = new(metadata) }), cancellationToken).ConfigureAwait(false);
            // Data found with no claim beside it, before we claim: left without metadata by a crash of an older
            // version (which wrote the sidecar second). Only the writer whose claim is the first one replaces it.
            var orphanSeen = false;
            if (options.IfAbsent)
            {
                orphanSeen = File.Exists(path) && !File.Exists(sidecarPath);
                if (TryLink(sidecarTemp, sidecarPath))
                {
                    claimed = true;
                }
                else
                {
                    // A claim is there: this same write from another copy of the job (equal metadata) may go on and
                    // race for the data; anyone else lost.
                    var claim = await ReadSidecarAsync(path, cancellationToken).ConfigureAwait(false);
                    if (File.Exists(path) || claim is null || !SameMetadata(claim.Metadata, metadata)) throw Exists(name);
                }
            }
            else
            {
                File.Move(sidecarTemp, sidecarPath, overwrite: true);
            }

            await using (var file = new FileStream(temp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Options = FileOptions.Asynchronous,
                BufferSize = 1 << 16,
            }))
            {
                await content.CopyToAsync(file, 1 << 16, cancellationToken).ConfigureAwait(false);
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
                length = file.Length;
            }

            if (options.IfAbsent)
            {
                if (!TryLink(temp, path))
                {
                    if (!(claimed && orphanSeen)) throw Exists(name);
                    File.Move(temp, path, overwrite: true);
                }
            }
            else
            {
                File.Move(temp, path, overwrite: true);
            }

            FsyncDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Translate(name, e);
        }
        finally
        {
            TryDelete(temp);
            TryDelete(sidecarTemp);
        }

        return new BlobProperties
        {
            Name = name,
            Length = length,
            ContentType = contentType,
            ETag = ETagOf(new FileInfo(path)),
            LastModified = File.GetLastWriteTimeUtc(path),
            Metadata = metadata,
        };
    }

    public Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken) => AsTask(() =>
    {
        var path = PathOf(name);
        return Guard<Stream>(name, () => new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Open,
            Access = FileAccess.Read,
            Share = FileShare.Read | FileShare.Delete,
            Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            BufferSize = 1 << 16,
        }));
    });

    public async Task<BlobProperties> GetPropertiesAsync(string name, CancellationToken cancellationToken)
    {
        var path = PathOf(name);
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw NotFound(name);
        }

        var sidecar = await ReadSidecarAsync(path, cancellationToken).ConfigureAwait(false);
        return new BlobProperties
        {
            Name = name,
            Length = info.Length,
            ContentType = sidecar?.ContentType ?? "application/octet-stream",
            ETag = ETagOf(info),
            LastModified = info.LastWriteTimeUtc,
            Metadata = sidecar?.Metadata is { } m ? new Dictionary<string, string>(m, StringComparer.OrdinalIgnoreCase) : new Dictionary<string, string>(),
        };
    }

    public Task<BlobPage> ListPageAsync(string? prefix, string? continuationToken, int? pageSize, CancellationToken cancellationToken) =>
        AsTask(() => ListPage(prefix, continuationToken, pageSize ?? _pageSize));

    public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken) => AsTask(() =>
    {
        var path = PathOf(name);
        return Guard(name, () =>
        {
            if (!File.Exists(path)) return false;
            File.Delete(path);
            File.Delete(SidecarPath(path));
            return true;
        });
    });

    private BlobPage ListPage(string? prefix, string? continuationToken, int size)
    {
        prefix = BlobName.ValidatePrefix(prefix);
        if (size < 1)
        {
            throw new StorageException(StorageErrorKind.InvalidRequest, $"Page size {size} is below 1.");
        }

        var startFolder = prefix.Contains('/') ? prefix[..prefix.LastIndexOf('/')] : "";
        var start = startFolder.Length == 0 ? _root : PathOf(startFolder);
        if (!Directory.Exists(start))
        {
            return new BlobPage { Items = [] };
        }

        var page = Guard(prefix, () => Directory
            .EnumerateFiles(start, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 })
            .Select(path => Path.GetRelativePath(_root, path).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(relative => relative.StartsWith(prefix, StringComparison.Ordinal)
                && (continuationToken is null || string.CompareOrdinal(relative, continuationToken) > 0)
                && !relative.Split('/').Any(segment => segment.StartsWith('.')))
            .Order(StringComparer.Ordinal)
            .Take(size + 1)
            .ToList());

        var items = page.Take(size).Select(relative =>
        {
            var info = new FileInfo(Path.Combine(_root, relative));
            return new BlobItem { Name = relative, Length = info.Exists ? info.Length : 0, LastModified = info.LastWriteTimeUtc };
        }).ToList();
        return new BlobPage { Items = items, ContinuationToken = page.Count > size ? items[^1].Name : null };
    }

    /// <summary>The file for <paramref name="name"/>, refusing names that are invalid, reserved (a segment starting
    /// with '.') or that reach outside the root through a symbolic link.</summary>
    public string PathOf(string name)
    {
        BlobName.Validate(name);
        if (name.Split('/').Any(s => s.StartsWith('.')))
        {
            throw new StorageException(StorageErrorKind.InvalidName, $"Refused blob name '{BlobName.Printable(name)}': segments starting with '.' are reserved in a local store.");
        }

        var path = Path.GetFullPath(Path.Combine(_root, name));
        if (!path.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new StorageException(StorageErrorKind.InvalidName, $"Refused blob name '{BlobName.Printable(name)}': it leaves the root {_root}.");
        }

        var real = RealPath(path);
        var realRoot = RealPath(_root);
        if (real is null || realRoot is null)
        {
            throw new StorageException(StorageErrorKind.InvalidName, $"Refused blob name '{BlobName.Printable(name)}': its path in {_root} has a loop of symbolic links.");
        }

        if (real != realRoot && !real.StartsWith(realRoot + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new StorageException(StorageErrorKind.InvalidName, $"Refused blob name '{BlobName.Printable(name)}': it goes through a symbolic link that leaves the root {_root}.");
        }

        return path;
    }

    private const int MaxSymbolicLinks = 40;

    private static readonly char[] Separators = [Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar];

    /// <summary>
    /// The path as the operating system resolves it, as realpath(3) does: every symbolic link of every existing
    /// component is followed (a link's target may hold further links and '..', applied after resolution). From the
    /// first component that does not exist on (a file or folder about to be created) the rest is appended as it is.
    /// Null for a loop (more than <see cref="MaxSymbolicLinks"/> links).
    /// </summary>
    internal static string? RealPath(string path)
    {
        var full = Path.GetFullPath(path);
        var resolved = Path.GetPathRoot(full)!;
        var pending = new Stack<string>();
        Push(full[resolved.Length..]);
        var links = 0;
        var exists = true;
        while (pending.TryPop(out var part))
        {
            if (part == ".") continue;
            if (part == "..")
            {
                resolved = Path.GetDirectoryName(resolved) ?? resolved;
                continue;
            }

            var next = Path.Combine(resolved, part);
            if (exists)
            {
                FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
                if (info.LinkTarget is { } target)
                {
                    if (++links > MaxSymbolicLinks) return null;
                    if (Path.IsPathRooted(target))
                    {
                        resolved = Path.GetPathRoot(target)!;
                        target = target[resolved.Length..];
                    }

                    Push(target);
                    continue;
                }

                exists = Path.Exists(next);
            }

            resolved = next;
        }

        return resolved;

        void Push(string relative)
        {
            foreach (var part in relative.Split(Separators, StringSplitOptions.RemoveEmptyEntries).Reverse()) pending.Push(part);
        }
    }

    private static string SidecarPath(string path) => Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}{SidecarSuffix}");

    private static string ETagOf(FileInfo info) => $"\"{info.LastWriteTimeUtc.Ticks:x}-{info.Length:x}\"";

    private static async Task WriteDurableAsync(string path, byte[] bytes, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Options = FileOptions.Asynchronous });
        await file.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        file.Flush(flushToDisk: true);
    }

    /// <summary>Moves <paramref name="source"/> to <paramref name="target"/> unless something is there: on Unix a
    /// link(2), which fails atomically when the name exists. False when it does.</summary>
    private static bool TryLink(string source, string target)
    {
        try
        {
            File.Move(source, target, overwrite: false);
            return true;
        }
        catch (IOException) when (File.Exists(target) || Directory.Exists(target))
        {
            return false;
        }
    }

    private static bool SameMetadata(Dictionary<string, string>? stored, IReadOnlyDictionary<string, string> wanted)
    {
        stored ??= [];
        if (stored.Count != wanted.Count) return false;
        var byKey = new Dictionary<string, string>(stored, StringComparer.OrdinalIgnoreCase);
        return wanted.All(p => byKey.TryGetValue(p.Key, out var v) && v == p.Value);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // A temp file we could not remove is hidden ('.' prefix) and never listed.
        }
    }

    /// <summary>A rename is durable only once its folder is: fsync(2) the folder (not possible on Windows, where NTFS journals it).</summary>
    private static void FsyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows()) return;
        var fd = NativeMethods.open(directory, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"cannot open folder {directory} to fsync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (NativeMethods.fsync(fd) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new IOException($"fsync of folder {directory} failed (errno {errno})", errno);
            }
        }
        finally
        {
            _ = NativeMethods.close(fd);
        }
    }

    private StorageException Exists(string name) =>
        new(StorageErrorKind.AlreadyExists, $"Local blob '{BlobName.Printable(name)}' in {_root} already exists (or is being written by a writer with other metadata).");

    private static async Task<Sidecar?> ReadSidecarAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = File.OpenRead(SidecarPath(path));
            return await JsonSerializer.DeserializeAsync<Sidecar>(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return null;
        }
    }

    private static Task<T> AsTask<T>(Func<T> action)
    {
        try
        {
            return Task.FromResult(action());
        }
        catch (Exception e)
        {
            return Task.FromException<T>(e);
        }
    }

    private T Guard<T>(string? name, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Translate(name, e);
        }
    }

    private StorageException Translate(string? name, Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => NotFound(name),
        UnauthorizedAccessException => new StorageException(StorageErrorKind.Forbidden, $"Local blob '{BlobName.Printable(name)}' in {_root}: access denied.", null, e),
        IOException when IsDiskFull(e) => new StorageException(StorageErrorKind.Unavailable,
            $"Local blob '{BlobName.Printable(name)}' in {_root}: the disk is full (no space left on device); nothing was written. Free space and retry.", null, e),
        _ => new StorageException(StorageErrorKind.Unavailable, $"Local blob '{BlobName.Printable(name)}' in {_root}: {e.Message}", null, e),
    };

    private const int ENOSPC = 28;
    private const int EDQUOT = 122;

    /// <summary>.NET on Unix carries the errno in HResult for errors it has no exception type for; Windows uses ERROR_DISK_FULL / ERROR_HANDLE_DISK_FULL.</summary>
    internal static bool IsDiskFull(Exception e) =>
        e.HResult is ENOSPC or EDQUOT or unchecked((int)0x80070070) or unchecked((int)0x80070027);

    private StorageException NotFound(string? name) =>
        new(StorageErrorKind.NotFound, $"Local blob '{BlobName.Printable(name)}' not found in {_root}.");

    // DllImport rather than LibraryImport: the generated stubs need unsafe code, which this project does not allow.
    private static class NativeMethods
    {
        [DllImport("libc", EntryPoint = "open", SetLastError = true)]
        internal static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
        internal static extern int fsync(int fd);

        [DllImport("libc", EntryPoint = "close", SetLastError = true)]
        internal static extern int close(int fd);
    }

    private sealed class Sidecar
    {
        public string? ContentType { get; set; }

        public Dictionary<string, string>? Metadata { get; set; }
    }
}
