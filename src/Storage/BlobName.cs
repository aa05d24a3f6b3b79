using System.Globalization;
using System.Text;

namespace MambaSt.Batch.Storage;

/// <summary>The one rule for blob names, shared by both stores so a name that works locally works in Azure:
/// '/'-separated relative segments, no '.' or '..', no backslash, control or invisible characters,
/// no look-alike slashes or dots, no percent-encoded sequences.</summary>
public static class BlobName
{
    public const int MaxLength = 1024;

    private static readonly HashSet<int> LookAlikes =
    [
        0x2215, 0x2044, 0x29F8, 0xFF0F, 0x2571, // slashes
        0x29F5, 0x29F9, 0xFE68, 0xFF3C, 0x2572, // backslashes
        0x2024, 0xFE52, 0xFF0E, 0x3002, 0xFF61, // dots
    ];

    /// <summary>Returns null when <paramref name="name"/> is acceptable, otherwise why not.</summary>
    public static string? Problem(string? name)
    {
        if (string.IsNullOrEmpty(name)) return "the name is empty";
        if (name.Length > MaxLength) return $"the name is longer than {MaxLength} characters";
        if (name[0] == '/') return "the name is absolute (starts with '/')";
        if (name.Length >= 2 && char.IsAsciiLetter(name[0]) && name[1] == ':') return "the name starts with a drive letter";
        if (name.Contains('\\')) return "the name contains a backslash";
        if (name.EndsWith('/')) return "the name ends with '/'";

        for (var i = 0; i < name.Length; i++)
        {
            if (name[i] == '%' && i + 2 < name.Length && Uri.IsHexDigit(name[i + 1]) && Uri.IsHexDigit(name[i + 2]))
            {
                return $"the name contains a percent-encoded sequence at {i} (pass names decoded)";
            }
        }

        var offset = 0;
        while (offset < name.Length)
        {
            if (Rune.DecodeFromUtf16(name.AsSpan(offset), out var rune, out var used) != System.Buffers.OperationStatus.Done)
            {
                return $"the name contains an unpaired surrogate at {offset}";
            }

            var category = Rune.GetUnicodeCategory(rune);
            if (rune.Value == 0) return "the name contains NUL";
            if (category is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.PrivateUse
                or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator)
            {
                return $"the name contains an invisible or control character U+{rune.Value:X4} at {offset}";
            }

            if (LookAlikes.Contains(rune.Value))
            {
                return $"the name contains U+{rune.Value:X4} at {offset}, which looks like a path separator or dot";
            }

            offset += used;
        }

        foreach (var segment in name.Split('/'))
        {
            if (segment.Length == 0) return "the name contains an empty segment ('//')";
            if (segment is "." or "..") return $"the name contains a '{segment}' segment";
            if (segment.Trim().Length == 0 || segment.EndsWith('.') || segment.EndsWith(' '))
            {
                return $"the segment '{segment}' is blank or ends with '.' or a space";
            }
        }

        return null;
    }

    /// <summary>Throws <see cref="StorageException"/> (<see cref="StorageErrorKind.InvalidName"/>) for a refused name.</summary>
    public static string Validate(string? name)
    {
        var problem = Problem(name);
        if (problem is not null)
        {
            throw new StorageException(StorageErrorKind.InvalidName, $"Refused blob name '{Printable(name)}': {problem}.");
        }

        return name!;
    }

    /// <summary>A prefix may be empty or end with '/'; otherwise it follows the name rules.</summary>
    public static string ValidatePrefix(string? prefix)
    {
        if (string.IsNullOrEmpty(prefix)) return "";
        Validate(prefix.EndsWith('/') ? prefix + "x" : prefix);
        return prefix;
    }

    internal static string Printable(string? name)
    {
        if (name is null) return "";
        var builder = new StringBuilder(Math.Min(name.Length, 200));
        foreach (var c in name.Length > 200 ? name[..200] : name)
        {
            builder.Append(char.IsControl(c) || char.IsSurrogate(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.Format
                ? $"\\u{(int)c:X4}"
                : c.ToString());
        }

        return builder.ToString();
    }
}
