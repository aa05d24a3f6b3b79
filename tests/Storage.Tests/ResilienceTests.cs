using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MambaSt.Batch.Storage.AzureBlobs;
using MambaSt.Batch.Testing;

namespace MambaSt.Batch.Storage.Tests;

[Trait(TestTraits.Category, TestTraits.Integration)]
public sealed class ResilienceTests(LocalServices services)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task With_30_percent_of_requests_failing_every_operation_succeeds_through_retries()
    {
        var handler = new FaultingHandler(failureRate: 0.3, seed: 20261125);
        var options = TestStores.Options(o =>
        {
            o.SinglePutLimitBytes = 256 * 1024;
            o.BlockSizeBytes = 64 * 1024;
            o.Resilience.MaxRetryAttempts = 10;
            o.Resilience.AttemptTimeout = TimeSpan.FromMilliseconds(750);
            o.Resilience.FailureRatio = 1.0;
        });
        var store = await TestStores.AzureAsync(services.BlobConnectionString, options, handler);
        var small = Enumerable.Range(0, 40).Select(i => (Name: $"f/{i:D3}.bin", Data: TestStores.Bytes(1000 + i, i))).ToList();
        var big = TestStores.Bytes(700 * 1024, 99);

        await Parallel.ForEachAsync(small, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = Ct }, async (blob, ct) =>
            await store.PutAsync(blob.Name, new MemoryStream(blob.Data), new BlobWriteOptions { Metadata = new Dictionary<string, string> { ["jobid"] = blob.Name[2..5] } }, ct));
        await store.PutAsync("f/big.bin", new ForwardOnlyStream(big), null, Ct);
        foreach (var (name, data) in small)
        {
            (await TestStores.ReadAllAsync(store, name)).ShouldBe(data);
            (await store.GetPropertiesAsync(name, Ct)).Metadata["jobid"].ShouldBe(name[2..5]);
        }

        (await TestStores.ReadAllAsync(store, "f/big.bin")).ShouldBe(big);
        (await store.ListAsync("f/", Ct).CountAsync(Ct)).ShouldBe(41);
        handler.Faults.ShouldBeGreaterThan(20);
        store.RetryCount.ShouldBeGreaterThan(0);
        store.RetryCount.ShouldBeGreaterThanOrEqualTo(handler.Faults);
    }

    [Fact]
    public async Task Retry_After_is_honoured()
    {
        var failures = 0;
        var handler = new FaultingHandler
        {
            Override = r => r.Method == HttpMethod.Head && Interlocked.Increment(ref failures) == 1
                ? new HttpResponseMessage(HttpStatusCode.TooManyRequests) { Headers = { { "Retry-After", "1" } } }
                : null,
        };
        var options = TestStores.Options(o => o.Resilience.MaxDelay = TimeSpan.FromSeconds(5));
        var store = await TestStores.AzureAsync(services.BlobConnectionString, options, handler);
        await store.PutAsync("r.bin", new MemoryStream([1]), null, Ct);

        var clock = Stopwatch.StartNew();
        await store.GetPropertiesAsync("r.bin", Ct);

        clock.Elapsed.ShouldBeGreaterThan(TimeSpan.FromMilliseconds(950));
        store.RetryCount.ShouldBe(1);
    }

    [Fact]
    public async Task Retries_run_out_into_a_transient_StorageUnavailable()
    {
        var handler = new FaultingHandler { Override = _ => new HttpResponseMessage(HttpStatusCode.BadGateway) };
        var options = TestStores.Options(o => o.Resilience.MaxRetryAttempts = 2);
        var store = new AzureBlobStore(BlobAccount.FromConnectionString(services.BlobConnectionString), "any", options, null, handler.Transport());

        var e = await Should.ThrowAsync<StorageException>(() => store.GetPropertiesAsync("x", Ct));

        e.Kind.ShouldBe(StorageErrorKind.Unavailable);
        e.ErrorCode.ShouldBe(Contracts.StylizationErrorCode.StorageUnavailable);
        e.IsTransient.ShouldBeTrue();
        e.Status.ShouldBe(502);
        handler.Requests.ShouldBe(3);
    }

    [Fact]
    public async Task Attempts_that_hang_end_as_Timeout()
    {
        var options = TestStores.Options(o =>
        {
            o.Resilience.MaxRetryAttempts = 1;
            o.Resilience.AttemptTimeout = TimeSpan.FromMilliseconds(200);
        });
        var hangingStore = new AzureBlobStore(
            BlobAccount.FromConnectionString(services.BlobConnectionString), "any", options, null, new HangingHandler().Transport());

        var e = await Should.ThrowAsync<StorageException>(() => hangingStore.GetPropertiesAsync("x", Ct));

        e.Kind.ShouldBe(StorageErrorKind.Timeout);
        e.ErrorCode.ShouldBe(Contracts.StylizationErrorCode.Timeout);
        e.IsTransient.ShouldBeTrue();
        hangingStore.RetryCount.ShouldBe(1);
    }

    [Fact]
    [Trait(TestTraits.Category, TestTraits.Chaos)]
    public async Task Uploads_survive_a_five_second_Azurite_outage()
    {
        var port = FreePort();
        var dataDir = Directory.CreateTempSubdirectory("mambast-azurite-");
        var azurite = new OwnAzurite(port, dataDir.FullName);
        try
        {
            await azurite.StartAsync(Ct);
            var connection = $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;";
            var options = TestStores.Options(o =>
            {
                o.Resilience.MaxRetryAttempts = 40;
                o.Resilience.BaseDelay = TimeSpan.FromMilliseconds(200);
                o.Resilience.MaxDelay = TimeSpan.FromSeconds(2);
                o.Resilience.AttemptTimeout = TimeSpan.FromSeconds(5);
                o.Resilience.MinimumThroughput = 5;
                o.Resilience.SamplingDuration = TimeSpan.FromSeconds(5);
                o.Resilience.BreakDuration = TimeSpan.FromSeconds(1);
            });
            var store = await TestStores.AzureAsync(connection, options);
            // Paced to outlast the stop: from the 10th upload on, at least 13 s of uploads remain, more than Azurite's
            // 10 s graceful stop, so the outage falls inside the run however slow the machine (at 60 uploads
            // four at a time, a slow stop on a loaded machine could let them all finish first, failing the test with no outage).
            var blobs = Enumerable.Range(0, 100).Select(i => (Name: $"o/{i:D3}.bin", Data: TestStores.Bytes(20_000, i))).ToList();
            var done = 0;

            var uploads = Parallel.ForEachAsync(blobs, new ParallelOptions { MaxDegreeOfParallelism = 2, CancellationToken = Ct }, async (blob, ct) =>
            {
                await store.PutAsync(blob.Name, new MemoryStream(blob.Data), null, ct);
                Interlocked.Increment(ref done);
                await Task.Delay(300, ct);
            });
            while (Volatile.Read(ref done) < 10) await Task.Delay(20, Ct);
            await azurite.StopAsync();
            var doneAtStop = Volatile.Read(ref done);
            await Task.Delay(TimeSpan.FromSeconds(5), Ct);
            var restart = Stopwatch.StartNew();
            await azurite.StartAsync(Ct);
            TestContext.Current.SendDiagnosticMessage($"Azurite restarted in {restart.Elapsed.TotalSeconds:F1} s; {doneAtStop} of {blobs.Count} uploads done at the stop");
            await uploads;

            doneAtStop.ShouldBeLessThan(blobs.Count);
            store.RetryCount.ShouldBeGreaterThan(0);
            foreach (var (name, data) in blobs)
            {
                (await TestStores.ReadAllAsync(store, name)).ShouldBe(data);
            }
        }
        finally
        {
            await azurite.StopAsync();
            dataDir.Delete(recursive: true);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private sealed class HangingHandler() : DelegatingHandler(new SocketsHttpHandler())
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            throw new InvalidOperationException("unreachable");
        }

        public Azure.Core.Pipeline.HttpPipelineTransport Transport() => new Azure.Core.Pipeline.HttpClientTransport(new HttpClient(this));
    }

    /// <summary>An Azurite this test owns, so it can stop it without touching the shared one. Started without
    /// --skipApiVersionCheck: the pinned Storage:ApiVersion must be one a stock Azurite accepts.</summary>
    private sealed class OwnAzurite(int port, string location)
    {
        private Process? _process;

        public async Task StartAsync(CancellationToken cancellationToken)
        {
            var psi = new ProcessStartInfo(Path.Combine(RepoPaths.Root, "node_modules", ".bin", "azurite-blob"),
                ["--blobHost", "127.0.0.1", "--blobPort", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--location", location,
                 "--loose", "--disableTelemetry", "--silent"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            _process = Process.Start(psi) ?? throw new InvalidOperationException("could not start azurite-blob");
            _process.OutputDataReceived += (_, _) => { };
            _process.ErrorDataReceived += (_, _) => { };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (true)
            {
                try
                {
                    using var client = new TcpClient();
                    await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
                    return;
                }
                catch (SocketException) when (DateTime.UtcNow < deadline && !_process.HasExited)
                {
                    await Task.Delay(100, cancellationToken);
                }
            }
        }

        public async Task StopAsync()
        {
            if (_process is null) return;
            if (!_process.HasExited)
            {
                // SIGTERM lets Azurite save its metadata database; SIGKILL could lose the container.
                using (var term = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                {
                    await term.WaitForExitAsync();
                }

                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    await _process.WaitForExitAsync(grace.Token);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill(entireProcessTree: true);
                    await _process.WaitForExitAsync();
                }
            }

            _process.Dispose();
            _process = null;
        }
    }
}
