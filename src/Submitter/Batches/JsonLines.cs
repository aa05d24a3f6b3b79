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

    /// <summary>Reads lines; a torn last line (a crash mid-write) is skipped.</summary>
    public static List<T> Read<T>(string? text)
    {
        var list = new List<T>();
        if (text is null) return list;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            try
            {
                if (JsonSerializer.Deserialize<T>(line, Options) is { } item) list.Add(item);
            }
            catch (JsonException)
            {
            }
        }

        return list;
    }
}
