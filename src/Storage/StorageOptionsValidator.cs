using System.ComponentModel.DataAnnotations;
using MambaSt.Batch.Storage.AzureBlobs;
using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Storage;

/// <summary>Rules across settings. Messages name the setting, never its value.</summary>
internal sealed class StorageOptionsValidator : IValidateOptions<StorageOptions>
{
    public ValidateOptionsResult Validate(string? name, StorageOptions options)
    {
        var failures = new List<string>();
        var sources = new[]
        {
            (Name: nameof(StorageOptions.ConnectionString), Set: !string.IsNullOrWhiteSpace(options.ConnectionString)),
            (Name: nameof(StorageOptions.SasUrl), Set: !string.IsNullOrWhiteSpace(options.SasUrl)),
            (Name: nameof(StorageOptions.AccountUrl), Set: !string.IsNullOrWhiteSpace(options.AccountUrl)),
        }.Where(s => s.Set).Select(s => s.Name).ToList();
        if (sources.Count > 1)
        {
            failures.Add($"Storage: set only one of ConnectionString, SasUrl, AccountUrl (found {string.Join(", ", sources)}).");
        }

        if (!string.IsNullOrWhiteSpace(options.SasToken) && string.IsNullOrWhiteSpace(options.AccountUrl))
        {
            failures.Add("Storage:SasToken needs Storage:AccountUrl.");
        }

        try
        {
            if (!string.IsNullOrWhiteSpace(options.ConnectionString)) BlobAccount.FromConnectionString(options.ConnectionString);
            if (!string.IsNullOrWhiteSpace(options.SasUrl)) BlobAccount.FromSasUrl(options.SasUrl);
            if (!string.IsNullOrWhiteSpace(options.AccountUrl)) BlobAccount.ParseAccountUrl(options.AccountUrl, nameof(StorageOptions.AccountUrl));
            if (!string.IsNullOrWhiteSpace(options.ApiVersion)) AzureBlobStore.ServiceVersion(options.ApiVersion);
        }
        catch (StorageException e)
        {
            failures.Add(e.Message);
        }

        if (options.Resilience is { } resilience)
        {
            var results = new List<ValidationResult>();
            if (!Validator.TryValidateObject(resilience, new ValidationContext(resilience), results, validateAllProperties: true))
            {
                failures.AddRange(results.Select(r => $"Storage:Resilience: {r.ErrorMessage}"));
            }

            if (resilience.BaseDelay > resilience.MaxDelay)
            {
                failures.Add("Storage:Resilience:BaseDelay must not exceed Storage:Resilience:MaxDelay.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
