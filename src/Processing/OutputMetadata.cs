using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Processing;

/// <summary>Metadata written with every output; it makes redelivered and resubmitted jobs idempotent.</summary>
public static class OutputMetadata
{
    public const string JobId = "mambast_job_id";
    public const string ModelId = "mambast_model_id";
    public const string ModelVersion = "mambast_model_version";
    public const string OptionsHash = "mambast_options_hash";
    public const string StyleHash = "mambast_style_hash";
    public const string Width = "mambast_width";
    public const string Height = "mambast_height";
    public const string BatchId = "mambast_batch_id";

    public static string HashOptions(StylizeOptions o)
    {
        var canonical = string.Create(CultureInfo.InvariantCulture,
            $"{o.MaxSide}|{o.Format}|{o.Quality}|{o.Seed}|{o.Strength:R}|{o.PreserveColor}");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)))[..16];
    }

    public static Dictionary<string, string> For(StylizeImage job, Ports.ModelIdentity model, string styleHash, int width, int height) => new()
    {
        [JobId] = job.JobId.ToString("D"),
        [BatchId] = job.BatchId,
        [ModelId] = model.Id,
        [ModelVersion] = model.Version,
        [OptionsHash] = HashOptions(job.Options),
        [StyleHash] = styleHash,
        [Width] = width.ToString(CultureInfo.InvariantCulture),
        [Height] = height.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>True when the stored output is this job's, made by this model with these options.</summary>
    public static bool IsSameJob(IReadOnlyDictionary<string, string> stored, StylizeImage job, Ports.ModelIdentity model) =>
        Get(stored, JobId) == job.JobId.ToString("D")
        && Get(stored, ModelId) == model.Id
        && Get(stored, ModelVersion) == model.Version
        && Get(stored, OptionsHash) == HashOptions(job.Options);

    /// <summary>What makes the stored output another job's, for the failure message: "job id, options, model".</summary>
    public static string Differences(IReadOnlyDictionary<string, string> stored, StylizeImage job, Ports.ModelIdentity model)
    {
        var differs = new List<string>();
        if (Get(stored, JobId) != job.JobId.ToString("D")) differs.Add("job id (content, style or options)");
        if (Get(stored, OptionsHash) is { } o && o != HashOptions(job.Options)) differs.Add("options");
        if (Get(stored, ModelId) != model.Id || Get(stored, ModelVersion) != model.Version) differs.Add($"model ({Get(stored, ModelId) ?? "none"} {Get(stored, ModelVersion) ?? ""} vs {model.Id} {model.Version})");
        return differs.Count == 0 ? "metadata" : string.Join(", ", differs);
    }

    public static string? Get(IReadOnlyDictionary<string, string> metadata, string key)
    {
        foreach (var (k, v) in metadata)
        {
            if (string.Equals(k, key, StringComparison.OrdinalIgnoreCase)) return v;
        }

        return null;
    }

    public static int GetInt(IReadOnlyDictionary<string, string> metadata, string key) =>
        int.TryParse(Get(metadata, key), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0;
}
