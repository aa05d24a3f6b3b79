using System.Net;
using Azure;
using Azure.Core;
using Azure.Storage;

namespace MambaSt.Batch.Storage.AzureBlobs;

/// <summary>A blob service endpoint and how to authenticate to it. <see cref="ToString"/> shows the
/// endpoint and the kind of credential, never a key or signature.</summary>
public sealed class BlobAccount
{
    public const string DevelopmentAccountName = "devstoreaccount1";

    // The emulator's published well-known key (Azurite docs), not a secret.
    private const string DevelopmentAccountKey =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private BlobAccount(Uri endpoint, string accountName)
    {
        Endpoint = endpoint;
        AccountName = accountName;
    }

    /// <summary>The service root: <c>https://acct.blob.core.windows.net</c> or path-style <c>http://127.0.0.1:10000/devstoreaccount1</c>.</summary>
    public Uri Endpoint { get; }

    public string AccountName { get; }

    public StorageSharedKeyCredential? SharedKey { get; private init; }

    public AzureSasCredential? Sas { get; private init; }

    public TokenCredential? Token { get; private init; }

    public string CredentialKind => SharedKey is not null ? "shared key" : Sas is not null ? "SAS" : Token is not null ? "token" : "anonymous";

    public override string ToString() => $"{Endpoint} ({CredentialKind})";

    public static BlobAccount WithSharedKey(Uri endpoint, string accountName, string accountKey) =>
        new(Normalize(endpoint), accountName) { SharedKey = new StorageSharedKeyCredential(accountName, accountKey) };

    public static BlobAccount WithSas(Uri endpoint, string sasToken) =>
        new(Normalize(endpoint), AccountNameOf(endpoint)) { Sas = new AzureSasCredential(sasToken.TrimStart('?')) };

    public static BlobAccount WithToken(Uri endpoint, TokenCredential credential) =>
        new(Normalize(endpoint), AccountNameOf(endpoint)) { Token = credential };

    public static BlobAccount Anonymous(Uri endpoint) => new(Normalize(endpoint), AccountNameOf(endpoint));

    public static BlobAccount FromConnectionString(string connectionString)
    {
        var parts = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var pair in connectionString.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = pair.IndexOf('=');
            if (eq <= 0)
            {
                throw Invalid("Storage:ConnectionString has an entry without 'name=value'.");
            }

            parts[pair[..eq].Trim()] = pair[(eq + 1)..].Trim();
        }

        if (parts.TryGetValue("UseDevelopmentStorage", out var dev) && dev.Equals("true", StringComparison.OrdinalIgnoreCase))
        {
            var proxy = parts.GetValueOrDefault("DevelopmentStorageProxyUri")?.TrimEnd('/') ?? "http://127.0.0.1";
            return WithSharedKey(new Uri($"{proxy}:10000/{DevelopmentAccountName}"), DevelopmentAccountName, DevelopmentAccountKey);
        }

        Uri endpoint;
        if (parts.TryGetValue("BlobEndpoint", out var blobEndpoint))
        {
            endpoint = ParseAccountUrl(blobEndpoint, "ConnectionString BlobEndpoint");
        }
        else
        {
            if (!parts.TryGetValue("AccountName", out var name) || name.Length == 0)
            {
                throw Invalid("Storage:ConnectionString has neither BlobEndpoint nor AccountName.");
            }

            var protocol = parts.GetValueOrDefault("DefaultEndpointsProtocol", "https");
            var suffix = parts.GetValueOrDefault("EndpointSuffix", "core.windows.net");
            endpoint = ParseAccountUrl($"{protocol}://{name}.blob.{suffix}", "ConnectionString AccountName/EndpointSuffix");
        }

        if (parts.TryGetValue("SharedAccessSignature", out var sas) && sas.Length > 0)
        {
            return WithSas(endpoint, sas);
        }

        if (!parts.TryGetValue("AccountKey", out var key) || key.Length == 0)
        {
            throw Invalid("Storage:ConnectionString has no AccountKey or SharedAccessSignature.");
        }

        try
        {
            Convert.FromBase64String(key);
        }
        catch (FormatException)
        {
            throw Invalid("Storage:ConnectionString AccountKey is not base64.");
        }

        var accountName = parts.GetValueOrDefault("AccountName") ?? AccountNameOf(endpoint);
        return WithSharedKey(endpoint, accountName, key);
    }

    /// <summary>An account or container URL whose query is a SAS; the container part, if any, is ignored here.</summary>
    public static BlobAccount FromSasUrl(string sasUrl)
    {
        if (!Uri.TryCreate(sasUrl, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            throw Invalid("Storage:SasUrl is not an absolute http(s) URL.");
        }

        if (!uri.Query.Contains("sig=", StringComparison.OrdinalIgnoreCase))
        {
            throw Invalid("Storage:SasUrl has no SAS query (no 'sig=').");
        }

        var location = StorageLocation.Parse(sasUrl);
        return WithSas(location.AccountEndpoint!, uri.Query);
    }

    internal static Uri ParseAccountUrl(string url, string setting)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            throw Invalid($"Storage:{setting} is not an absolute http(s) URL.");
        }

        return Normalize(uri);
    }

    internal static bool IsPathStyle(Uri uri) =>
        uri.IsLoopback || IPAddress.TryParse(uri.Host, out _) || uri.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase);

    private static string AccountNameOf(Uri endpoint) =>
        IsPathStyle(endpoint) ? endpoint.AbsolutePath.Trim('/').Split('/')[0] : endpoint.Host.Split('.')[0];

    private static Uri Normalize(Uri uri) => new(uri.GetLeftPart(UriPartial.Path).TrimEnd('/'));

    private static StorageException Invalid(string message) => new(StorageErrorKind.NotConfigured, message);
}
