using System.Security.Cryptography;
using System.Text;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;

namespace MambaSt.Batch.Storage.AzureBlobs;

/// <summary>Signs each attempt with Shared Key (Blob service, version 2009-09-19 and later), following
/// "Authorize with Shared Key" in the Azure Storage REST reference. Runs per retry, so every attempt gets
/// a fresh x-ms-date. Thread-safe: holds only the immutable credential.</summary>
internal sealed class SharedKeyPolicy(AzureNamedKeyCredential credential) : HttpPipelineSynchronousPolicy
{
    private static readonly string[] SignedStandardHeaders =
    [
        "Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type", "Date",
        "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range",
    ];

    public override void OnSendingRequest(HttpMessage message)
    {
        var request = message.Request;
        request.Headers.SetValue("x-ms-date", DateTimeOffset.UtcNow.ToString("r", System.Globalization.CultureInfo.InvariantCulture));
        credential.Deconstruct(out var name, out var key);
        var stringToSign = StringToSign(request, name);
        using var hmac = new HMACSHA256(Convert.FromBase64String(key));
        var signature = Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(stringToSign)));
        request.Headers.SetValue("Authorization", $"SharedKey {name}:{signature}");
    }

    internal static string StringToSign(Request request, string accountName)
    {
        var builder = new StringBuilder();
        builder.Append(request.Method.Method).Append('\n');
        foreach (var header in SignedStandardHeaders)
        {
            var value = "";
            if (header == "Content-Length")
            {
                if (request.Content is not null && request.Content.TryComputeLength(out var length) && length > 0)
                {
                    value = length.ToString(System.Globalization.CultureInfo.InvariantCulture);
                }
            }
            else if (request.Headers.TryGetValue(header, out var headerValue))
            {
                value = headerValue;
            }

            builder.Append(value).Append('\n');
        }

        var msHeaders = request.Headers
            .Where(h => h.Name.StartsWith("x-ms-", StringComparison.OrdinalIgnoreCase))
            .Select(h => (Name: h.Name.ToLowerInvariant(), Value: h.Value.Trim()))
            .OrderBy(h => h.Name, StringComparer.Ordinal);
        foreach (var (headerName, value) in msHeaders)
        {
            builder.Append(headerName).Append(':').Append(value).Append('\n');
        }

        var uri = request.Uri.ToUri();
        builder.Append('/').Append(accountName).Append(uri.AbsolutePath);
        var query = uri.Query.TrimStart('?');
        if (query.Length > 0)
        {
            var parameters = query.Split('&', StringSplitOptions.RemoveEmptyEntries)
                .Select(p =>
                {
                    var eq = p.IndexOf('=');
                    return eq < 0
                        ? (Name: Uri.UnescapeDataString(p).ToLowerInvariant(), Value: "")
                        : (Name: Uri.UnescapeDataString(p[..eq]).ToLowerInvariant(), Value: Uri.UnescapeDataString(p[(eq + 1)..]));
                })
                .GroupBy(p => p.Name)
                .OrderBy(g => g.Key, StringComparer.Ordinal);
            foreach (var group in parameters)
            {
                builder.Append('\n').Append(group.Key).Append(':')
                    .Append(string.Join(',', group.Select(p => p.Value).OrderBy(v => v, StringComparer.Ordinal)));
            }
        }

        return builder.ToString();
    }
}

/// <summary>Appends a SAS to every request's query. The token is never logged (Azure.Core redacts query values).</summary>
internal sealed class SasPolicy(AzureSasCredential credential) : HttpPipelineSynchronousPolicy
{
    public override void OnSendingRequest(HttpMessage message)
    {
        var uri = message.Request.Uri;
        var sas = credential.Signature.TrimStart('?');
        var existing = uri.Query.TrimStart('?');
        uri.Query = existing.Length == 0 ? "?" + sas : $"?{existing}&{sas}";
    }
}
