using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace MambaSt.Batch.Submitter.Tests;

/// <summary>Signs a container-scoped service SAS (sr=c), the kind an operator hands out for one output container:
/// it can read, add, create, write and list blobs, but cannot create the container itself.</summary>
internal static class ContainerSas
{
    public static string Create(string accountName, string accountKey, string container, string permissions, DateTimeOffset expiry)
    {
        const string version = "2021-08-06";
        var expires = expiry.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        string[] fields =
        [
            permissions, "", expires, $"/blob/{accountName}/{container}", "", "", "https,http", version, "c", "", "",
            "", "", "", "", "",
        ];
        using var hmac = new HMACSHA256(Convert.FromBase64String(accountKey));
        var signature = Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(string.Join('\n', fields))));
        return $"sv={version}&sr=c&sp={permissions}&se={Uri.EscapeDataString(expires)}&spr=https,http&sig={Uri.EscapeDataString(signature)}";
    }

    public static string Setting(string connectionString, string name) =>
        connectionString.Split(';').Single(p => p.StartsWith(name + "=", StringComparison.Ordinal))[(name.Length + 1)..];
}
