using System.Security.Cryptography;
using System.Text;

namespace MambaSt.Batch.Storage.Tests;

/// <summary>Signs an account SAS (service version 2020-12-06 layout) so the SAS path can be tested against Azurite.</summary>
internal static class AccountSas
{
    public static string Create(string accountName, string accountKey, DateTimeOffset expiry)
    {
        const string version = "2021-08-06";
        const string permissions = "racwdl";
        var expires = expiry.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        var stringToSign = string.Join('\n', accountName, permissions, "b", "sco", "", expires, "", "https,http", version, "", "");
        using var hmac = new HMACSHA256(Convert.FromBase64String(accountKey));
        var signature = Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(stringToSign)));
        return $"sv={version}&ss=b&srt=sco&sp={permissions}&se={Uri.EscapeDataString(expires)}&spr=https,http&sig={Uri.EscapeDataString(signature)}";
    }
}
