using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MambaSt.Batch.Submitter.Batches;

/// <summary>JSON and JSON Lines as the batch records are written.</summary>
public static class JsonLines
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static string Write<T>(IEnumerable<T> items)
    {
        var sb = new StringBuilder();
        foreach (var item in items)
        {
            sb.Append(JsonSerializer.Serialize(item, Options)).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>Reads lines; a malformed line (a torn last line from a crash, a hand edit) is skipped.</summary>
    public static List<T> Read<T>(string? text) => Read<T>(text, out _);

    /// <summary>Reads lines, skipping and counting malformed ones.</summary>
    public static List<T> Read<T>(string? text, out int malformed)
    {
        var list = new List<T>();
        malformed = 0;
        if (text is null) return list;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (TryParse<T>(line, out var item)) list.Add(item);
            else malformed++;
        }

        return list;
    }

    /// <summary>Parses streamed lines; a malformed one is skipped and counted in <paramref name="issues"/> under <paramref name="source"/>.</summary>
    public static async IAsyncEnumerable<T> ReadAsync<T>(IAsyncEnumerable<string> lines, string source, RecordIssues issues,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var number = 0;
        await foreach (var raw in lines.WithCancellation(cancellationToken))
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0) continue;
            if (TryParse<T>(line, out var item)) yield return item;
            else issues.Malformed(source, number);
        }
    }

    private static bool TryParse<T>(string line, out T item)
    {
        try
        {
            if (JsonSerializer.Deserialize<T>(line, Options) is { } parsed)
            {
                item = parsed;
                return true;
            }
        }
        catch (JsonException)
        {
        }

        item = default!;
        return false;
    }
}

/// <summary>Malformed record lines met while reading (torn by a crash, edited by hand): counted, with the first few places.</summary>
public sealed class RecordIssues
{
    private const int Kept = 5;
    private readonly List<string> _places = [];
    private int _count;

    public int MalformedLines => Volatile.Read(ref _count);

    public IReadOnlyList<string> Places
    {
        get
        {
            lock (_places) return [.. _places];
        }
    }

    public void Malformed(string source, int line)
    {
        Interlocked.Increment(ref _count);
        lock (_places)
        {
            if (_places.Count < Kept) _places.Add($"{source}:{line}");
        }
    }

    /// <summary>A warning to print, or null when every line was read.</summary>
    public string? Summary => MalformedLines == 0 ? null
        : $"{MalformedLines} malformed record line{(MalformedLines == 1 ? "" : "s")} skipped (first at {string.Join(", ", Places)}); a line torn by a crash is expected, others mean the records were edited or damaged";
}
