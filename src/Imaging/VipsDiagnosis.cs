using System.Text;
using System.Text.RegularExpressions;
using NetVips;

namespace MambaSt.Batch.Imaging;

/// <summary>libvips's explanation of a failure, reduced to text that cannot carry the input's content.</summary>
/// <remarks>Decoders sometimes quote what they read (a brand, a tag value, a marker byte, a profile name).
/// Failure messages travel into job records, events and logs, so anything that may come from the file goes:
/// quoted text, hexadecimal numbers, non-ASCII and control characters. What stays is libvips's own wording
/// and plain decimal numbers (sizes, offsets), capped in length.</remarks>
internal static partial class VipsDiagnosis
{
    private const int MaxLength = 200;

    public static string Of(VipsException exception) => Clean(exception.Message);

    public static string Clean(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)

            // NetVips's own first line ("unable to call thumbnail_buffer") says nothing about the image.
            .Where(line => !line.StartsWith("unable to call ", StringComparison.Ordinal))
            .Select(Scrub)
            .Where(line => line.Length > 0)
            .Distinct(StringComparer.Ordinal);
        var joined = string.Join("; ", lines);
        if (joined.Length == 0)
        {
            return "no detail from libvips";
        }

        return joined.Length <= MaxLength ? joined : string.Concat(joined.AsSpan(0, MaxLength), "...");
    }

    private static string Scrub(string line)
    {
        line = Quoted().Replace(line, "<redacted>");
        line = Hex().Replace(line, "<redacted>");
        var kept = new StringBuilder(line.Length);
        foreach (var c in line)
        {
            kept.Append(c is >= ' ' and <= '~' ? c : '?');
        }

        return Spaces().Replace(kept.ToString(), " ").Trim();
    }

    // An apostrophe inside a word ("doesn't") opens no quote.
    [GeneratedRegex("""(?<![A-Za-z])'[^']*'?|"[^"]*"?|`[^`]*`?""")]
    private static partial Regex Quoted();

    // 0x-prefixed numbers, and hex runs with both a digit and a letter a-f (plain decimals such as sizes stay).
    [GeneratedRegex(@"\b0[xX][0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{8,}\b")]
    private static partial Regex Hex();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}
