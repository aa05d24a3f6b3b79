using System.Diagnostics;

using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Configurations;
using DotNet.Testcontainers.Containers;

using Testcontainers.RabbitMq;

using Xunit;

namespace MambaSt.Batch.Testing;

/// <summary>Where the fixture's RabbitMQ and Azurite come from.</summary>
public enum ServicesPath
{
    /// <summary>MAMBAST_RABBITMQ_URL and MAMBAST_BLOB_CONNECTION, as `make test` sets them once per run.</summary>
    Environment,

    /// <summary>Containers started through Testcontainers, because a Docker engine answered.</summary>
    Testcontainers,

    /// <summary>Loopback services started by scripts/services.sh (no Docker engine).</summary>
    Loopback,
}

/// <summary>
/// The real RabbitMQ and Azurite every integration test talks to. MAMBAST_RABBITMQ_URL and
/// MAMBAST_BLOB_CONNECTION override everything. Otherwise, when a Docker engine exists (and
/// MAMBAST_TESTCONTAINERS is not 0), Testcontainers starts a RabbitMQ container and an Azurite container for this
/// test process; without one, scripts/services.sh starts the loopback services once per worktree (idempotent,
/// shared across processes by a file lock). The path taken is logged and kept in <see cref="Path"/>.
/// </summary>
public sealed class LocalServices : IAsyncLifetime
{
    public const string RabbitMqImage = "rabbitmq:4.1-management-alpine";

    public const string AzuriteImage = "mcr.microsoft.com/azure-storage/azurite:3.37.0";

    private const int AzuriteBlobPort = 10000;

    // Azurite's well-known development account key (public, documented by Microsoft; not a secret).
    private const string AzuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly List<IContainer> _containers = [];

    public string RabbitMqUrl { get; private set; } = "";

    public string BlobConnectionString { get; private set; } = "";

    public Uri RabbitMqUri => new(RabbitMqUrl);

    public ServicesPath Path { get; private set; }

    public string ServicesScript => System.IO.Path.Combine(RepoPaths.Root, "scripts", "services.sh");

    /// <summary>The environment wins when it names both services; else containers when Docker answers; else loopback.</summary>
    public static ServicesPath Choose(string? rabbitMqUrl, string? blobConnection, bool dockerAvailable, string? testcontainersSwitch) =>
        !string.IsNullOrEmpty(rabbitMqUrl) && !string.IsNullOrEmpty(blobConnection) ? ServicesPath.Environment
        : dockerAvailable && testcontainersSwitch != "0" ? ServicesPath.Testcontainers
        : ServicesPath.Loopback;

    /// <summary>Cheap (no container started): Testcontainers found a Docker endpoint it could authenticate to.</summary>
    public static bool DockerAvailable()
    {
        try
        {
            return TestcontainersSettings.OS.DockerEndpointAuthConfig is not null;
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or TypeInitializationException or ArgumentException)
        {
            return false;
        }
    }

    public async ValueTask InitializeAsync()
    {
        var rabbit = NullIfEmpty(Environment.GetEnvironmentVariable("MAMBAST_RABBITMQ_URL"));
        var blob = NullIfEmpty(Environment.GetEnvironmentVariable("MAMBAST_BLOB_CONNECTION"));
        var clock = Stopwatch.StartNew();
        Path = Choose(rabbit, blob, rabbit is null || blob is null ? DockerAvailable() : false, Environment.GetEnvironmentVariable("MAMBAST_TESTCONTAINERS"));
        switch (Path)
        {
            case ServicesPath.Testcontainers:
                rabbit ??= await StartRabbitMqAsync();
                blob ??= await StartAzuriteAsync();
                break;
            case ServicesPath.Loopback:
                var output = await RunScriptAsync("up", TimeSpan.FromMinutes(3));
                foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    var (name, value) = ParseExport(line);
                    if (name == "MAMBAST_RABBITMQ_URL") rabbit ??= value;
                    if (name == "MAMBAST_BLOB_CONNECTION") blob ??= value;
                }

                break;
        }

        RabbitMqUrl = rabbit ?? throw new InvalidOperationException($"RabbitMQ URL unknown after the {Path} path");
        BlobConnectionString = blob ?? throw new InvalidOperationException($"Blob connection unknown after the {Path} path");
        Log($"LocalServices: {Path} path ({Describe(Path)}), ready in {clock.Elapsed.TotalSeconds:F1} s");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var container in _containers)
        {
            await container.DisposeAsync();
        }
    }

    /// <summary>Runs a services.sh verb (e.g. stop-rabbitmq, start-azurite) and returns its stdout. Acts on the
    /// loopback services only: the chaos tests that stop and start services need the loopback path.</summary>
    public async Task<string> RunScriptAsync(string verb, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo("bash", [ServicesScript, verb])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start services.sh");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"services.sh {verb} did not finish within {timeout}");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"services.sh {verb} failed ({process.ExitCode}): {await stderr}");
        }

        return await stdout;
    }

    private async Task<string> StartRabbitMqAsync()
    {
        var container = new RabbitMqBuilder(RabbitMqImage).Build();
        _containers.Add(container);
        await container.StartAsync();
        return container.GetConnectionString();
    }

    private async Task<string> StartAzuriteAsync()
    {
        // The same flags as scripts/services.sh, so both paths serve the same Azurite.
        var container = new ContainerBuilder(AzuriteImage)
            .WithCommand("azurite-blob", "--blobHost", "0.0.0.0", "--blobPort", "10000", "--skipApiVersionCheck", "--loose", "--disableTelemetry")
            .WithPortBinding(AzuriteBlobPort, assignRandomHostPort: true)
            .WithWaitStrategy(Wait.ForUnixContainer().UntilMessageIsLogged("Azurite Blob service is successfully listening"))
            .Build();
        _containers.Add(container);
        await container.StartAsync();
        var endpoint = $"http://{container.Hostname}:{container.GetMappedPublicPort(AzuriteBlobPort)}/devstoreaccount1";
        return $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AzuriteKey};BlobEndpoint={endpoint};";
    }

    private static string Describe(ServicesPath path) => path switch
    {
        ServicesPath.Environment => "MAMBAST_RABBITMQ_URL and MAMBAST_BLOB_CONNECTION",
        ServicesPath.Testcontainers => $"Docker engine found: {RabbitMqImage}, {AzuriteImage}; a variable set in the environment still wins",
        _ => "no Docker engine (or MAMBAST_TESTCONTAINERS=0): scripts/services.sh up",
    };

    private static void Log(string line)
    {
        // Diagnostic messages show with `dotnet test --logger "console;verbosity=normal"` or xunit's diagnosticMessages; stderr always.
        TestContext.Current.SendDiagnosticMessage(line);
        Console.Error.WriteLine(line);
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static (string Name, string Value) ParseExport(string line)
    {
        // export NAME='value'
        var trimmed = line.Trim();
        if (!trimmed.StartsWith("export ", StringComparison.Ordinal)) return ("", "");
        var eq = trimmed.IndexOf('=');
        if (eq < 0) return ("", "");
        var name = trimmed[7..eq];
        var value = trimmed[(eq + 1)..].Trim('\'');
        return (name, value);
    }
}
