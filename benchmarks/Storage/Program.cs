using System.Diagnostics;
using System.Globalization;
using MambaSt.Batch.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

// Usage: MambaSt.Batch.Benchmarks.Storage [--mib N] [--rounds N]
// Needs MAMBAST_BLOB_CONNECTION (eval "$(scripts/services.sh up)"). Baseline: the same round trips through
// the local-folder store in the same run, so the ratio is comparable across machines and loads.
var argList = args.ToList();
string Arg(string name, string fallback) => argList.IndexOf(name) is var i and >= 0 && i + 1 < argList.Count ? argList[i + 1] : fallback;
var mib = int.Parse(Arg("--mib", "20"), CultureInfo.InvariantCulture);
var rounds = int.Parse(Arg("--rounds", "5"), CultureInfo.InvariantCulture);
var blob = Environment.GetEnvironmentVariable("MAMBAST_BLOB_CONNECTION") ?? throw new InvalidOperationException("set MAMBAST_BLOB_CONNECTION");

var data = new byte[mib * 1024 * 1024];
new Random(42).NextBytes(data);
var localRoot = Directory.CreateTempSubdirectory("mambast-bench-storage-");
var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
{
    ["Storage:ConnectionString"] = blob,
    ["Storage:LocalRoot"] = localRoot.FullName,
}).Build();
await using var provider = new ServiceCollection().AddLogging().AddBlobStorage(configuration).BuildServiceProvider();
var resolver = provider.GetRequiredService<IStorageResolver>();
var azure = resolver.Resolve($"az://bench-{Guid.NewGuid():N}"[..30] + "/x").Store;
var local = resolver.Resolve("x").Store;
await azure.CreateContainerIfMissingAsync(CancellationToken.None);

try
{
    var localMs = await RoundTrips(local, "local");
    var azureMs = await RoundTrips(azure, "azurite");
    Console.WriteLine($"ratio azurite/local (median): {azureMs / localMs:F1}x");
}
finally
{
    localRoot.Delete(recursive: true);
}

async Task<double> RoundTrips(IBlobStore store, string label)
{
    var times = new List<double>();
    for (var r = 0; r <= rounds; r++)
    {
        var name = $"bench/{r}.bin";
        var clock = Stopwatch.StartNew();
        await store.PutAsync(name, new MemoryStream(data, writable: false), null, CancellationToken.None);
        var put = clock.Elapsed.TotalMilliseconds;
        await using (var read = await store.OpenReadAsync(name, CancellationToken.None))
        {
            var buffer = new byte[81920];
            long total = 0;
            int n;
            while ((n = await read.ReadAsync(buffer)) > 0) total += n;
            if (total != data.Length) throw new InvalidOperationException($"read {total} bytes, wrote {data.Length}");
        }

        var all = clock.Elapsed.TotalMilliseconds;
        if (r == 0) continue; // warm-up
        times.Add(all);
        Console.WriteLine($"{label} round {r}: put {put:F0} ms, put+get {all:F0} ms");
    }

    times.Sort();
    var median = times[times.Count / 2];
    Console.WriteLine($"{label}: {mib} MiB put+get median {median:F0} ms ({2.0 * mib / (median / 1000):F0} MiB/s), min {times[0]:F0} ms");
    return median;
}
