using System.Reflection;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using System.Xml.Linq;
using MambaSt.Batch.Contracts;
using MassTransit.Serialization;

namespace MambaSt.Batch.ContractsGen;

/// <summary>
/// JSON Schema (draft 2020-12) of every message and enum in MambaSt.Batch.Contracts, as MassTransit's System.Text.Json
/// serializer writes them (camelCase, enums as numbers, names in x-enumNames): the <c>message</c> of a MassTransit envelope and the
/// <c>data</c> of a CloudEvent. Descriptions come from the contracts' XML docs.
/// </summary>
public static class ContractSchemas
{
    public const string RegenerateCommand = "make contracts";

    public const string SchemaFolder = "contracts/schemas";

    public const string IdPrefix = "urn:mambast:schema:";

    /// <summary>Message types: records of the contracts assembly that are sent or published.</summary>
    public static readonly Type[] Messages = [typeof(StylizeImage), typeof(ImageStylized), typeof(ImageStylizationFailed)];

    /// <summary>Every public enum of the contracts assembly.</summary>
    public static Type[] Enums => typeof(StylizeImage).Assembly.GetExportedTypes().Where(t => t.IsEnum).OrderBy(t => t.Name, StringComparer.Ordinal).ToArray();

    public static string FileName(Type type) => $"{type.Name}.schema.json";

    /// <summary>File name (under <see cref="SchemaFolder"/>) to content, for every message and enum.</summary>
    public static SortedDictionary<string, string> Generate()
    {
        var options = new JsonSerializerOptions(SystemTextJsonMessageSerializer.Options);
        options.MakeReadOnly(populateMissingResolver: true);
        var docs = XmlDocs.Load(typeof(StylizeImage).Assembly);
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var type in Messages.Concat(Enums))
        {
            var exporter = new JsonSchemaExporterOptions
            {
                TreatNullObliviousAsNonNullable = true,
                TransformSchemaNode = (context, node) => Describe(context, node, docs),
            };
            var schema = options.GetJsonSchemaAsNode(type, exporter).AsObject();
            var root = new JsonObject
            {
                ["$schema"] = "https://json-schema.org/draft/2020-12/schema",
                ["$id"] = IdPrefix + type.Name,
                ["title"] = type.Name,
            };
            foreach (var (key, value) in schema.ToArray())
            {
                schema.Remove(key);
                if (!root.ContainsKey(key)) root[key] = value;
            }

            files[FileName(type)] = root.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }).ReplaceLineEndings("\n") + "\n";
        }

        return files;
    }

    private static JsonNode Describe(JsonSchemaExporterContext context, JsonNode node, IReadOnlyDictionary<string, string> docs)
    {
        if (node is not JsonObject obj) return node;
        string? summary = null;
        if (context.PropertyInfo?.AttributeProvider is PropertyInfo property)
        {
            docs.TryGetValue($"P:{property.DeclaringType!.FullName}.{property.Name}", out summary);
        }
        else if (context.PropertyInfo is null)
        {
            docs.TryGetValue($"T:{context.TypeInfo.Type.FullName}", out summary);
        }

        if (summary is not null && !obj.ContainsKey("description")) obj["description"] = summary;
        var type = Nullable.GetUnderlyingType(context.TypeInfo.Type) ?? context.TypeInfo.Type;
        if (type.IsEnum)
        {
            // MassTransit writes enums as numbers; the names travel beside them (NJsonSchema's convention).
            obj["enum"] = new JsonArray(Enum.GetValuesAsUnderlyingType(type).Cast<object>().Select(v => (JsonNode)JsonValue.Create(Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture))).ToArray());
            obj["x-enumNames"] = new JsonArray(Enum.GetNames(type).Select(n => (JsonNode)JsonValue.Create(n)).ToArray());
        }

        if (context.PropertyInfo is null && context.TypeInfo.Type.IsEnum)
        {
            var members = new JsonObject();
            foreach (var name in Enum.GetNames(context.TypeInfo.Type))
            {
                if (docs.TryGetValue($"F:{context.TypeInfo.Type.FullName}.{name}", out var text)) members[name] = text;
            }

            if (members.Count > 0) obj["x-enum-descriptions"] = members;
        }

        return obj;
    }

    /// <summary>Writes the files into <paramref name="repoRoot"/>/contracts/schemas; returns the paths written.</summary>
    public static IReadOnlyList<string> Write(string repoRoot)
    {
        var folder = Path.Combine(repoRoot, SchemaFolder);
        Directory.CreateDirectory(folder);
        var written = new List<string>();
        foreach (var (name, content) in Generate())
        {
            var path = Path.Combine(folder, name);
            File.WriteAllText(path, content, new UTF8Encoding(false));
            written.Add(path);
        }

        return written;
    }

    private static class XmlDocs
    {
        public static IReadOnlyDictionary<string, string> Load(Assembly assembly)
        {
            var path = Path.ChangeExtension(assembly.Location, ".xml");
            if (!File.Exists(path)) throw new FileNotFoundException($"XML docs of {assembly.GetName().Name} not found at {path} (GenerateDocumentationFile)");
            return XDocument.Load(path).Descendants("member")
                .Where(m => m.Element("summary") is not null)
                .ToDictionary(m => (string)m.Attribute("name")!, m => Flatten(m.Element("summary")!));
        }

        private static string Flatten(XElement summary)
        {
            var text = string.Concat(summary.Nodes().Select(n => n switch
            {
                XText t => t.Value,
                XElement { Name.LocalName: "see" } e => ((string?)e.Attribute("cref") ?? (string?)e.Attribute("langword") ?? "").Split('.', ':').Last(),
                XElement e => e.Value,
                _ => "",
            }));
            return string.Join(' ', text.Split((char[])[' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries));
        }
    }
}
