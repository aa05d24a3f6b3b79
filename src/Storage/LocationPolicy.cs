using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Storage;

/// <summary>Section "Storage": which locations a message may name. Empty lists mean the defaults:
/// local paths only under <see cref="StorageOptions.LocalRoot"/> (the current directory when unset), blobs only on
/// the configured account (any container), SAS URLs only on the configured account's host.</summary>
public sealed class LocationPolicyOptions
{
    /// <summary>Folders whose files (after every symlink is resolved) jobs may read and write.</summary>
    public List<string> AllowedLocalRoots { get; set; } = [];

    /// <summary><c>account/container</c> patterns; <c>*</c> matches any run of characters
    /// (<c>prodphotos/*</c>, <c>prodphotos/out-*</c>). <c>az://</c> locations use the configured account's name.</summary>
    public List<string> AllowedAccounts { get; set; } = [];

    /// <summary>Hosts (or <c>host:port</c>) that blob URLs may name: <c>acct.blob.core.windows.net</c>,
    /// <c>*.blob.core.windows.net</c>, <c>127.0.0.1:10000</c>. <c>http://</c> is accepted only for a loopback
    /// host listed here (or the configured loopback emulator).</summary>
    public List<string> AllowedHosts { get; set; } = [];
}

/// <summary>Decides, before any I/O, whether a location from a message may be touched. A refusal is a
/// <see cref="StorageException"/> of kind <see cref="StorageErrorKind.NotAllowed"/> (the job fails at once as
/// InvalidRequest) that names the setting to change and never shows a SAS. Thread-safe.</summary>
public sealed class LocationPolicy
{
    private const int MaxLinkHops = 40;
    private static readonly StringComparison PathComparison = OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;

    private readonly LocationPolicyOptions _options;
    private readonly string _localRoot;
    private readonly Lazy<IReadOnlyList<string>> _roots;

    public LocationPolicy(LocationPolicyOptions options, string? localRoot)
    {
        _options = options;
        _localRoot = Path.GetFullPath(string.IsNullOrWhiteSpace(localRoot) ? Environment.CurrentDirectory : localRoot);
        _roots = new(() => (options.AllowedLocalRoots.Count == 0 ? [_localRoot] : options.AllowedLocalRoots)
            .Where(r => !string.IsNullOrWhiteSpace(r))
            .Select(r => RealPath(Path.GetFullPath(r, _localRoot)))
            .ToList());
    }

    /// <summary>The policy for the "Storage" section of <paramref name="configuration"/>.</summary>
    public static LocationPolicy From(IConfiguration configuration)
    {
        var section = configuration.GetSection(StorageOptions.SectionName);
        return new LocationPolicy(section.Get<LocationPolicyOptions>() ?? new(), section[nameof(StorageOptions.LocalRoot)]);
    }

    /// <summary>Throws <see cref="StorageException"/> (NotAllowed) unless <paramref name="location"/> may be used.
    /// <paramref name="configuredEndpoint"/> gives the configured account's endpoint (null when none).</summary>
    public void Check(StorageLocation location, Func<Uri?> configuredEndpoint)
    {
        if (location.Kind == StorageLocationKind.Local)
        {
            CheckLocal(location);
        }
        else
        {
            CheckAzure(location, configuredEndpoint());
        }
    }

    /// <summary>Parses and checks a location string (the submitter's check of what it enqueues).</summary>
    public void Check(string location, Uri? configuredEndpoint) => Check(StorageLocation.Parse(location), () => configuredEndpoint);

    private void CheckLocal(StorageLocation location)
    {
        var full = Path.GetFullPath(location.Path, _localRoot);
        var real = RealPath(full);
        if (_roots.Value.Any(root => IsUnder(real, root))) return;
        var via = string.Equals(real, full, PathComparison) ? "" : " (through a symbolic link)";
        throw Refused(location, $"it is outside the allowed local roots{via}", "add its folder to Storage:AllowedLocalRoots");
    }

    private void CheckAzure(StorageLocation location, Uri? configured)
    {
        var endpoint = location.AccountEndpoint ?? configured;
        if (endpoint is null) return; // The resolver reports the missing account (NotConfigured).

        if (location.AccountEndpoint is { } named)
        {
            // No SAS and not the configured account: the resolver refuses it (NotConfigured) without I/O.
            if (!location.HasSas && !SameAccount(named, configured)) return;

            // A loopback http:// host passes only when it is the configured emulator or listed in AllowedHosts.
            if (named.Scheme == Uri.UriSchemeHttp && !IsLoopback(named))
            {
                throw Refused(location, "http:// is accepted only for a loopback storage emulator", "use https://");
            }

            if (!HostAllowed(named, configured))
            {
                throw Refused(location, $"host '{named.Authority}' is not allowed", $"add '{named.Authority}' to Storage:AllowedHosts");
            }
        }

        var account = AccountName(endpoint);
        var target = $"{account}/{location.Container}";
        var allowed = _options.AllowedAccounts.Count == 0
            ? configured is not null && SameAccount(endpoint, configured)
            : _options.AllowedAccounts.Any(p => Glob(p.Trim(), target));
        if (!allowed)
        {
            throw Refused(location, $"account and container '{target}' are not allowed", $"add '{target}' (or '{account}/*') to Storage:AllowedAccounts");
        }
    }

    private bool HostAllowed(Uri named, Uri? configured) =>
        _options.AllowedHosts.Count == 0 ? configured is not null && SameHost(named, configured) : HostListed(named);

    private bool HostListed(Uri named) =>
        _options.AllowedHosts.Any(p => Glob(p.Trim(), named.Authority) || Glob(p.Trim(), named.Host));

    private static bool SameHost(Uri a, Uri b) => a.Scheme == b.Scheme && string.Equals(a.Authority, b.Authority, StringComparison.OrdinalIgnoreCase);

    private static bool SameAccount(Uri a, Uri? b) =>
        b is not null && SameHost(a, b) && string.Equals(AccountName(a), AccountName(b), StringComparison.OrdinalIgnoreCase);

    /// <summary>Emulator (path-style) endpoints carry the account in the path; cloud ones in the first host label.</summary>
    private static string AccountName(Uri endpoint) =>
        IsLoopback(endpoint) || IPAddress.TryParse(endpoint.Host, out _)
            ? endpoint.AbsolutePath.Trim('/').Split('/')[0]
            : endpoint.Host.Split('.')[0];

    private static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || uri.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase);

    /// <summary>True when the https rule holds: an Azure endpoint is https unless it is an emulator: on loopback, or
    /// serving the emulator's public development account (Azurite as a compose service, e.g. http://azurite:10000/devstoreaccount1),
    /// whose well-known key protects nothing.</summary>
    public static bool IsSecureEndpoint(Uri endpoint) =>
        endpoint.Scheme == Uri.UriSchemeHttps || IsLoopback(endpoint)
        || endpoint.AbsolutePath.Trim('/').Split('/')[0].Equals(DevelopmentAccount, StringComparison.Ordinal);

    private const string DevelopmentAccount = "devstoreaccount1";

    private static bool Glob(string pattern, string value)
    {
        if (pattern.Length == 0) return false;
        var parts = pattern.Split('*');
        if (parts.Length == 1) return string.Equals(pattern, value, StringComparison.OrdinalIgnoreCase);
        if (!value.StartsWith(parts[0], StringComparison.OrdinalIgnoreCase)) return false;
        var at = parts[0].Length;
        for (var i = 1; i < parts.Length - 1; i++)
        {
            var found = value.IndexOf(parts[i], at, StringComparison.OrdinalIgnoreCase);
            if (found < 0) return false;
            at = found + parts[i].Length;
        }

        var last = parts[^1];
        return value.Length - at >= last.Length && value.EndsWith(last, StringComparison.OrdinalIgnoreCase);
    }

    private static bool IsUnder(string path, string root) =>
        string.Equals(path, root, PathComparison)
        || path.StartsWith(root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar, PathComparison);

    /// <summary>The path with every symbolic link resolved, at every level; the parts that do not exist yet
    /// (an output about to be written) are kept as given.</summary>
    internal static string RealPath(string fullPath)
    {
        var pending = new Stack<string>(Segments(fullPath).Reverse());
        var current = Path.GetPathRoot(fullPath) ?? "/";
        var hops = 0;
        while (pending.Count > 0)
        {
            var next = Path.Combine(current, pending.Pop());
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            if (info.Exists && info.LinkTarget is { } target)
            {
                if (++hops > MaxLinkHops) throw new StorageException(StorageErrorKind.NotAllowed, "Too many levels of symbolic links.");
                var resolved = Path.GetFullPath(target, current);
                foreach (var segment in Segments(resolved).Reverse()) pending.Push(segment);
                current = Path.GetPathRoot(resolved) ?? "/";
                continue;
            }

            current = next;
        }

        return current;
    }

    private static IEnumerable<string> Segments(string fullPath) =>
        fullPath[(Path.GetPathRoot(fullPath)?.Length ?? 0)..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);

    private static StorageException Refused(StorageLocation location, string why, string remedy) =>
        new(StorageErrorKind.NotAllowed, $"Storage location '{StorageLocation.Redact(location.ToString())}' is not allowed: {why}; to allow it, {remedy}.");
}

/// <summary>Azure endpoints in the Storage settings must be https, except a loopback emulator.</summary>
internal sealed class SecureEndpointValidator : IValidateOptions<StorageOptions>
{
    public ValidateOptionsResult Validate(string? name, StorageOptions options)
    {
        var failures = new List<string>();
        Check(nameof(StorageOptions.SasUrl), options.SasUrl);
        Check(nameof(StorageOptions.AccountUrl), options.AccountUrl);
        if (!string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            var parts = options.ConnectionString.Split(';', StringSplitOptions.RemoveEmptyEntries)
                .Select(p => p.Split('=', 2))
                .Where(p => p.Length == 2)
                .ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.OrdinalIgnoreCase);
            if (parts.TryGetValue("BlobEndpoint", out var blobEndpoint))
            {
                Check("ConnectionString's BlobEndpoint", blobEndpoint);
            }
            else if (parts.TryGetValue("DefaultEndpointsProtocol", out var protocol) && !protocol.Equals("https", StringComparison.OrdinalIgnoreCase)
                && !(parts.TryGetValue("AccountName", out var account) && account == "devstoreaccount1"))
            {
                failures.Add("Storage:ConnectionString: DefaultEndpointsProtocol must be https (http only for a loopback emulator's BlobEndpoint).");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);

        void Check(string setting, string? url)
        {
            if (string.IsNullOrWhiteSpace(url) || !Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri)) return;
            if (!LocationPolicy.IsSecureEndpoint(uri))
            {
                failures.Add($"Storage:{setting} must be an https:// endpoint (http:// only for a loopback emulator).");
            }
        }
    }
}

public sealed partial class StorageLocation
{
    /// <summary>The location as events and records may carry it: a blob URL loses its query (the SAS), every
    /// other form is returned as given. Whoever reads the reference brings their own credential.</summary>
    public static string WithoutSas(string location)
    {
        if (!location.StartsWith("http://", StringComparison.OrdinalIgnoreCase) && !location.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            return location;
        }

        var cut = location.IndexOfAny(['?', '#']);
        return cut < 0 ? location : location[..cut];
    }
}
