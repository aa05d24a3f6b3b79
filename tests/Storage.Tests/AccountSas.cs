using Azure.Storage;
using Azure.Storage.Sas;

namespace MambaSt.Batch.Storage.Tests;

/// <summary>An account SAS signed by the SDK's <see cref="AccountSasBuilder"/>, so the SAS path can be tested against Azurite.</summary>
internal static class AccountSas
{
    public static string Create(string accountName, string accountKey, DateTimeOffset expiry) =>
        new AccountSasBuilder(AccountSasPermissions.Read | AccountSasPermissions.Add | AccountSasPermissions.Create | AccountSasPermissions.Write
                | AccountSasPermissions.Delete | AccountSasPermissions.List, expiry, AccountSasServices.Blobs, AccountSasResourceTypes.All)
        {
            Protocol = SasProtocol.HttpsAndHttp,
        }
        .ToSasQueryParameters(new StorageSharedKeyCredential(accountName, accountKey))
        .ToString();
}
