using System.Globalization;
using System.Security.Cryptography;
using System.Text;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Submitter.Batches;

namespace MambaSt.Batch.Submitter.Jobs;

/// <summary>
/// Deterministic job and batch ids: a name-based UUID (RFC 9562 version 5, SHA-1) over a canonical
/// string of the content identity, the style identity and the options. Same inputs, same id; any change
/// to the content bytes (or blob ETag), the style or an option gives another id.
/// </summary>
public static class JobIdentity
{
    /// <summary>The UUID namespace of MambaSt.Batch job ids.</summary>
    public static readonly Guid JobNamespace = new("6f1d3c52-8a0e-5b7d-9c41-2e5f7a9b0d13");

    public static Guid JobId(string contentIdentity, string styleIdentity, StylizeOptions options) =>
        NameBased(JobNamespace, $"content={contentIdentity}\nstyle={styleIdentity}\noptions={Canonical(options)}");

    /// <summary>A short batch id derived from the source, the style and the options: <c>b-</c> and 12 hex digits.</summary>
    public static string BatchId(string source, string styleIdentity, StylizeOptions options)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"source={source}\nstyle={styleIdentity}\noptions={Canonical(options)}"));
        return "b-" + Convert.ToHexStringLower(hash)[..12];
    }

    /// <summary>Identity of a local file: its path relative to the source root and the SHA-256 of its bytes.</summary>
    public static string LocalContentIdentity(string relativePath, string sha256Hex) =>
        $"file:{relativePath.Replace('\\', '/')}:sha256:{sha256Hex}";

    /// <summary>Identity of a blob: its name, size and ETag (or Content-MD5 when there is one).</summary>
    public static string BlobContentIdentity(string name, long size, string? etag, string? contentMd5) =>
        $"blob:{name}:{size.ToString(CultureInfo.InvariantCulture)}:{(string.IsNullOrEmpty(contentMd5) ? "etag:" + etag : "md5:" + contentMd5)}";

    public static string Canonical(StylizeOptions o) => string.Create(CultureInfo.InvariantCulture,
        $"max-side={o.MaxSide};format={o.Format.ToString().ToLowerInvariant()};quality={o.Quality};seed={o.Seed};strength={o.Strength:R};preserve-color={(o.PreserveColor ? 1 : 0)}");

    /// <summary>RFC 9562 name-based UUID, version 5.</summary>
    public static Guid NameBased(Guid ns, string name)
    {
        Span<byte> nsBytes = stackalloc byte[16];
        ns.TryWriteBytes(nsBytes, bigEndian: true, out _);
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var input = new byte[16 + nameBytes.Length];
        nsBytes.CopyTo(input);
        nameBytes.CopyTo(input, 16);
        var hash = SHA1.HashData(input);
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true);
    }

    /// <summary>The output name for an input: the relative path without its extension, plus the format's extension.</summary>
    public static string OutputName(string relativePath, OutputFormat format)
    {
        var rel = relativePath.Replace('\\', '/');
        var dot = rel.LastIndexOf('.');
        var slash = rel.LastIndexOf('/');
        var stem = dot > slash + 1 ? rel[..dot] : rel;
        return stem + "." + Extension(format);
    }

    /// <summary>Refuses (exit 2) jobs of distinct inputs that would write one output, such as <c>a.jpg</c> and
    /// <c>a.png</c> (or <c>a.JPG</c> and <c>a.jpg</c>) with <c>--format jpeg</c>: one of them would fail for good.
    /// With <paramref name="ignoreCase"/> (<see cref="NamesIgnoreCase"/>) <c>a.jpg</c> and <c>A.png</c> clash too.</summary>
    public static void EnsureDistinctOutputs(IEnumerable<JobRecord> jobs, OutputFormat format, bool ignoreCase)
    {
        var clashes = jobs.GroupBy(j => j.OutputPath, ignoreCase ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal)
            .Select(g => (Output: g.Key, Inputs: g.Select(j => j.RelativePath).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList()))
            .Where(c => c.Inputs.Count > 1)
            .OrderBy(c => c.Output, StringComparer.Ordinal)
            .ToList();
        if (clashes.Count == 0) return;
        const int shown = 10;
        var lines = clashes.Take(shown).Select(c => $"{string.Join(", ", c.Inputs.Select(i => $"'{i}'"))} -> '{c.Output}'");
        var more = clashes.Count > shown ? $"; and {clashes.Count - shown} more" : "";
        throw new UsageException(
            $"{clashes.Count} output name{(clashes.Count == 1 ? " is" : "s are")} shared by several inputs (outputs are named <relative path without extension>.{Extension(format)}): "
            + $"{string.Join("; ", lines)}{more}. Rename or move one of each, or submit them separately");
    }

    /// <summary>Whether output names that differ only in case name one file: local folders on Windows and macOS
    /// (case-insensitive by default); blob names and Linux folders are case-sensitive.</summary>
    public static bool NamesIgnoreCase(bool localOutput) => localOutput && (OperatingSystem.IsWindows() || OperatingSystem.IsMacOS());

    public static string Extension(OutputFormat format) => format switch
    {
        OutputFormat.Jpeg => "jpg",
        OutputFormat.Png => "png",
        OutputFormat.Webp => "webp",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown output format"),
    };
}
