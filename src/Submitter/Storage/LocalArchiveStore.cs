using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;

using MambaSt.Batch.Storage;
using MambaSt.Batch.Storage.Local;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Jobs;

namespace MambaSt.Batch.Submitter.Storage;

/// <summary>A local folder. References are absolute paths.</summary>
public sealed class LocalArchiveStore(string root) : IArchiveStore
{
    public string Root { get; } = Path.GetFullPath(root);

    public string Location => Root;

    public bool IsLocal => true;

    public string RefFor(string relativePath) => Path.GetFullPath(Path.Combine(Root, relativePath));

    public async IAsyncEnumerable<ArchiveItem> ListAsync(string relativePrefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var start = Path.Combine(Root, relativePrefix);
        if (File.Exists(start))
        {
            var info = new FileInfo(start);
            yield return new ArchiveItem(info.Name, info.Length, info.FullName, null);
            yield break;
        }

        if (!Directory.Exists(start)) yield break;
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.Hidden };
        foreach (var path in Directory.EnumerateFiles(start, "*", options).Order(StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var rel = Path.GetRelativePath(Root, path).Replace('\\', '/');
            if (!relativePrefix.StartsWith(BatchPaths.Root, StringComparison.Ordinal) && rel.StartsWith(BatchPaths.Root + "/", StringComparison.Ordinal)) continue;
            yield return new ArchiveItem(rel, new FileInfo(path).Length, path, null);
        }

        await Task.CompletedTask;
    }

    public async Task<string> IdentifyAsync(ArchiveItem item, CancellationToken cancellationToken)
    {
        await using var stream = File.OpenRead(item.Ref);
        var hash = await SHA256.HashDataAsync(stream, cancellationToken);
        return JobIdentity.LocalContentIdentity(item.RelativePath, Convert.ToHexStringLower(hash));
    }

    public Task<bool> ExistsAsync(string relativePath, CancellationToken cancellationToken) =>
        Task.FromResult(File.Exists(RefFor(relativePath)));

    public async Task<IReadOnlyDictionary<string, string>?> ReadMetadataAsync(string relativePath, CancellationToken cancellationToken)
    {
        try
        {
            return (await new LocalFolderStore(Root).GetPropertiesAsync(relativePath, cancellationToken)).Metadata;
        }
        catch (StorageException ex) when (ex.Kind == StorageErrorKind.NotFound)
        {
            return null;
        }
    }

    public Task<bool> DeleteAsync(string relativePath, CancellationToken cancellationToken) => new LocalFolderStore(Root).DeleteAsync(relativePath, cancellationToken);

    public async Task<string?> ReadTextAsync(string relativePath, CancellationToken cancellationToken)
    {
        var path = RefFor(relativePath);
        return File.Exists(path) ? await File.ReadAllTextAsync(path, cancellationToken) : null;
    }

    public async IAsyncEnumerable<string> ReadLinesAsync(string relativePath, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var path = RefFor(relativePath);
        if (!File.Exists(path)) yield break;
        using var reader = new StreamReader(new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.ReadWrite | FileShare.Delete, Options = FileOptions.SequentialScan, BufferSize = 1 << 16,
        }), Encoding.UTF8);
        while (await reader.ReadLineAsync(cancellationToken) is { } line) yield return line;
    }

    public async Task AppendLinesAsync(string relativePath, string lines, CancellationToken cancellationToken)
    {
        var path = RefFor(relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await using var file = new FileStream(path, new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.Read, BufferSize = 0 });
        var end = file.Length;
        var bytes = Encoding.UTF8.GetBytes(lines);
        if (end > 0)
        {
            // An earlier append torn by a full disk or a crash: start on a new line, so only that line is lost
            // (readers count it as malformed) and not the first one appended now.
            file.Position = end - 1;
            if (file.ReadByte() != '\n') bytes = [(byte)'\n', .. bytes];
        }

        file.Position = end;
        await file.WriteAsync(bytes, cancellationToken);
        file.Flush(flushToDisk: true);
    }

    public async Task WriteTextAsync(string relativePath, string text, CancellationToken cancellationToken)
    {
        var path = RefFor(relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        await File.WriteAllTextAsync(temp, text, cancellationToken);
        File.Move(temp, path, overwrite: true);
    }

    public async Task<bool> UploadIfAbsentAsync(string relativePath, string localFile, CancellationToken cancellationToken)
    {
        var path = RefFor(relativePath);
        if (File.Exists(path)) return false;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        try
        {
            await using var source = File.OpenRead(localFile);
            await using var target = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
            await source.CopyToAsync(target, cancellationToken);
            return true;
        }
        catch (IOException) when (File.Exists(path))
        {
            return false;
        }
    }
}
