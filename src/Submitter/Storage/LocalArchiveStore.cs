using System.Runtime.CompilerServices;
using System.Security.Cryptography;

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

    public async Task<string?> ReadTextAsync(string relativePath, CancellationToken cancellationToken)
    {
        var path = RefFor(relativePath);
        return File.Exists(path) ? await File.ReadAllTextAsync(path, cancellationToken) : null;
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
