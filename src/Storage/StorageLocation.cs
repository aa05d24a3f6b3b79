using System.Text.RegularExpressions;
using MambaSt.Batch.Storage.AzureBlobs;

namespace MambaSt.Batch.Storage;

public enum StorageLocationKind
{
    /// <summary><c>az://container/path</c> on the configured account, or a blob URL.</summary>
    Azure,

    /// <summary>A local path or <c>file://</c> URI.</summary>
    Local,
}

/// <summary>A parsed location string as carried in messages (ContentRef, StyleRef, OutputRef).
/// <see cref="ToString"/> never shows a SAS signature.</summary>
public sealed partial class StorageLocation
{
    private StorageLocation(StorageLocationKind kind, string path)
    {
        Kind = kind;
        Path = path;
    }

    public StorageLocationKind Kind { get; }

    /// <summary>Azure: the blob name or prefix inside <see cref="Container"/> (may be empty).
    /// Local: the path as given (absolute, or relative to Storage:LocalRoot).</summary>
    public string Path { get; }

    /// <summary>Azure only: null for <c>az://</c> (the configured account), else the account endpoint from the URL.</summary>
    public Uri? AccountEndpoint { get; private init; }

    public string? Container { get; private init; }

    /// <summary>The SAS query of a SAS URL, kept as the credential for this location.</summary>
    internal string? Sas { get; private init; }

    public bool HasSas => Sas is not null;

    public override string ToString() => Kind switch
    {
        StorageLocationKind.Local => Path,
        _ when AccountEndpoint is null => $"az://{Container}/{Path}",
        _ => $"{AccountEndpoint}/{Container}/{Path}{(Sas is null ? "" : "?<SAS redacted>")}",
    };

    public static StorageLocation Parse(string? location)
    {
        if (string.IsNullOrWhiteSpace(location))
        {
            throw Invalid("", "the location is empty");
        }

        if (location.StartsWith("az://", StringComparison.OrdinalIgnoreCase))
        {
            var rest = location[5..];
            var slash = rest.IndexOf('/');
            var container = slash < 0 ? rest : rest[..slash];
            var path = slash < 0 ? "" : rest[(slash + 1)..];
            return Azure(location, null, container, path, null);
        }

        if (location.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || location.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            return ParseUrl(location);
        }

        if (location.StartsWith("file://", StringComparison.OrdinalIgnoreCase))
        {
            if (!Uri.TryCreate(location, UriKind.Absolute, out var fileUri) || !fileUri.IsFile
                || !(fileUri.Host.Length == 0 || fileUri.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase)))
            {
                throw Invalid(location, "not a local file:// URI");
            }

            return Local(location, fileUri.LocalPath);
        }

        if (SchemePattern().IsMatch(location))
        {
            throw Invalid(location, "unsupported scheme (use az://, https://, http:// for Azurite, file:// or a path)");
        }

        return Local(location, location);
    }

    private static StorageLocation ParseUrl(string location)
    {
        var schemeEnd = location.IndexOf("://", StringComparison.Ordinal) + 3;
        var pathStart = location.IndexOfAny(['/', '?', '#'], schemeEnd);
        var authority = pathStart < 0 ? location[schemeEnd..] : location[schemeEnd..pathStart];
        var scheme = location[..(schemeEnd - 3)].ToLowerInvariant();
        if (!Uri.TryCreate($"{scheme}://{authority}", UriKind.Absolute, out var root) || authority.Contains('@'))
        {
            throw Invalid(location, "the host part is not valid");
        }

        var rawPath = pathStart < 0 ? "" : location[pathStart..];
        var queryStart = rawPath.IndexOfAny(['?', '#']);
        var query = queryStart < 0 ? "" : rawPath[queryStart..];
        if (queryStart >= 0) rawPath = rawPath[..queryStart];
        if (query.Contains('#')) query = query[..query.IndexOf('#')];

        var segments = rawPath.TrimStart('/').Split('/').Select(s => Decode(location, s)).ToList();
        var account = "";
        if (BlobAccount.IsPathStyle(root))
        {
            account = segments[0];
            segments.RemoveAt(0);
            if (account.Length == 0) throw Invalid(location, "an emulator URL needs /account/container/...");
        }

        var container = segments.Count > 0 ? segments[0] : "";
        var path = string.Join('/', segments.Skip(1));
        var endpoint = new Uri(account.Length == 0 ? root.GetLeftPart(UriPartial.Authority) : $"{root.GetLeftPart(UriPartial.Authority)}/{account}");
        var sas = query.Length > 1 ? query[1..] : null;
        return Azure(location, endpoint, container, path, sas);
    }

    private static string Decode(string location, string segment)
    {
        string decoded;
        try
        {
            decoded = Uri.UnescapeDataString(segment);
        }
        catch (UriFormatException)
        {
            throw Invalid(location, "the path has a malformed percent-encoding");
        }

        if (decoded.Contains('/') || decoded.Contains('\\'))
        {
            throw Invalid(location, "the path has an encoded '/' or '\\' inside a segment");
        }

        return decoded;
    }

    private static StorageLocation Azure(string location, Uri? endpoint, string container, string path, string? sas)
    {
        if (!AzureBlobStore.IsValidContainerName(container))
        {
            throw Invalid(location, $"'{BlobName.Printable(container)}' is not a valid container name (3-63 lowercase letters, digits, '-')");
        }

        if (path.Length > 0)
        {
            var problem = BlobName.Problem(path.EndsWith('/') ? path + "x" : path);
            if (problem is not null) throw Invalid(location, problem);
        }

        return new StorageLocation(StorageLocationKind.Azure, path) { AccountEndpoint = endpoint, Container = container, Sas = sas };
    }

    private static StorageLocation Local(string location, string path)
    {
        if (path.Contains('\0')) throw Invalid(location, "the path contains NUL");
        if (path.Contains('\\')) throw Invalid(location, "the path contains a backslash");
        if (path.Split('/').Any(s => s is ".." or ".")) throw Invalid(location, "the path contains a '.' or '..' segment");
        if (!System.IO.Path.IsPathRooted(path))
        {
            var problem = BlobName.Problem(path.EndsWith('/') ? path + "x" : path);
            if (problem is not null) throw Invalid(location, problem);
        }

        return new StorageLocation(StorageLocationKind.Local, path);
    }

    private static StorageException Invalid(string location, string why) =>
        new(StorageErrorKind.InvalidName, $"Invalid storage location '{Redact(location)}': {why}.");

    /// <summary>Replaces SAS signatures and keys in text meant for logs and messages (control characters escaped, at most 200 characters).</summary>
    public static string Redact(string? text) => BlobName.Printable(RedactSecrets(text));

    /// <summary>Replaces SAS signatures and keys (<c>sig=</c>, <c>AccountKey=</c>, <c>SharedAccessSignature=</c>) with <c>&lt;redacted&gt;</c>; the rest of the text is kept whole.</summary>
    public static string RedactSecrets(string? text) =>
        string.IsNullOrEmpty(text) ? "" : SecretPattern().Replace(text, m => $"{m.Groups[1].Value}=<redacted>");

    [GeneratedRegex(@"^[a-zA-Z][a-zA-Z0-9+.\-]*://")]
    private static partial Regex SchemePattern();

    [GeneratedRegex(@"(sig|AccountKey|SharedAccessSignature)=[^&;\s]*", RegexOptions.IgnoreCase)]
    private static partial Regex SecretPattern();
}
