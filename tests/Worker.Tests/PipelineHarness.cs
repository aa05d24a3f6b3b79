using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using MambaSt.Batch.Contracts;
using MambaSt.Batch.Imaging;
using MambaSt.Batch.Storage;
using MambaSt.Batch.Testing;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MambaSt.Batch.Worker.Tests;

/// <summary>One test's world: its own queue, container and event listener on the real RabbitMQ and Azurite.</summary>
internal sealed class PipelineHarness : IAsyncDisposable
{
    private readonly ServiceProvider _provider;
    private readonly bool _autoDeleteObserver;
    private IBusControl? _bus;

    public PipelineHarness(LocalServices services, string? rabbitMqUrl = null, bool autoDeleteObserver = true)
    {
        Services = services;
        RabbitMqUrl = rabbitMqUrl ?? services.RabbitMqUrl;
        _autoDeleteObserver = autoDeleteObserver;
        var id = Guid.NewGuid().ToString("N")[..10];
        QueueName = $"stylize-test-{id}";
        Container = $"worker-{id}";
        BatchId = $"batch-{id}";
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Storage:ConnectionString"] = services.BlobConnectionString })
            .Build();
        _provider = new ServiceCollection().AddBlobStorage(configuration).BuildServiceProvider();
        Resolver = _provider.GetRequiredService<IStorageResolver>();
        Codec = new VipsImageCodec(new ImagingOptions());
    }

    public LocalServices Services { get; }

    public string RabbitMqUrl { get; }

    public string QueueName { get; }

    public string Container { get; }

    public string BatchId { get; }

    public IStorageResolver Resolver { get; }

    public VipsImageCodec Codec { get; }

    public ConcurrentQueue<ImageStylized> Completed { get; } = new();

    public ConcurrentQueue<ImageStylizationFailed> Failed { get; } = new();

    public IBlobStore Store => Resolver.Resolve($"az://{Container}/x").Store;

    public Dictionary<string, string> WorkerSettings(Dictionary<string, string>? extra = null)
    {
        var settings = new Dictionary<string, string>
        {
            ["Broker__Url"] = RabbitMqUrl,
            ["Storage__ConnectionString"] = Services.BlobConnectionString,
            ["Inference__ModelDirectory"] = Path.Combine(RepoPaths.Fixtures, "golden", "tiny-sequential"),
            ["Inference__IntraOpThreads"] = "1",
            ["Worker__QueueName"] = QueueName,
            ["Worker__BatchMessageLimit"] = "4",
            ["Worker__BatchTimeLimitMs"] = "100",
            ["Worker__ConcurrentBatches"] = "1",
            ["Worker__PrefetchCount"] = "8",
            ["Worker__ImmediateRetryDelayMs"] = "50",
            ["Worker__RedeliveryDelaysSeconds__0"] = "1",
            ["Worker__RedeliveryDelaysSeconds__1"] = "1",
            ["Worker__StopTimeoutSeconds"] = "20",
            ["Worker__WorkerId"] = $"test-{QueueName}",
            ["Health__Port"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (extra is not null)
        {
            foreach (var (k, v) in extra) settings[k] = v;
        }

        return settings;
    }

    public async Task StartListeningAsync(CancellationToken ct)
    {
        _bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(new Uri(RabbitMqUrl));
            cfg.ReceiveEndpoint($"{QueueName}-observer", e =>
            {
                e.AutoDelete = _autoDeleteObserver;
                e.Handler<ImageStylized>(ctx =>
                {
                    if (ctx.Message.BatchId == BatchId) Completed.Enqueue(ctx.Message);
                    return Task.CompletedTask;
                });
                e.Handler<ImageStylizationFailed>(ctx =>
                {
                    if (ctx.Message.BatchId == BatchId) Failed.Enqueue(ctx.Message);
                    return Task.CompletedTask;
                });
            });
        });
        await _bus.StartAsync(ct);
        await Store.CreateContainerIfMissingAsync(ct);
    }

    /// <summary>A smooth synthetic photo (gradients and a disc), distinct per index.</summary>
    public byte[] MakeJpeg(int index, int width = 64, int height = 48)
    {
        var rgb = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var o = (y * width + x) * 3;
                var inDisc = (x - width / 2) * (x - width / 2) + (y - height / 2) * (y - height / 2) < (height / 3) * (height / 3);
                rgb[o] = (byte)((x * 255 / width + index * 37) % 256);
                rgb[o + 1] = (byte)(y * 255 / height);
                rgb[o + 2] = (byte)(inDisc ? 200 : (index * 53) % 256);
            }
        }

        return Codec.Encode(new RgbImage(width, height, rgb), new EncodeOptions { Format = OutputFormat.Jpeg, Quality = 92 });
    }

    public async Task UploadAsync(string name, byte[] data, CancellationToken ct)
    {
        using var stream = new MemoryStream(data);
        await Store.PutAsync(name, stream, new BlobWriteOptions { ContentType = "image/jpeg" }, ct);
    }

    /// <summary>Uploads a style and <paramref name="count"/> distinct photos; returns one job per photo (seed = index).</summary>
    public async Task<List<StylizeImage>> UploadJobsAsync(int count, int width, int height, CancellationToken ct)
    {
        await UploadAsync("styles/style.jpg", MakeJpeg(count + 1000, 48, 48), ct);
        var jobs = new List<StylizeImage>();
        for (var i = 0; i < count; i++)
        {
            await UploadAsync($"in/{i:D3}.jpg", MakeJpeg(i, width, height), ct);
            jobs.Add(Job($"in/{i:D3}.jpg", seed: i));
        }

        return jobs;
    }

    public StylizeImage Job(string contentName, string styleName = "styles/style.jpg", long seed = 1) => new()
    {
        JobId = Guid.NewGuid(),
        BatchId = BatchId,
        ContentRef = $"az://{Container}/{contentName}",
        StyleRef = $"az://{Container}/{styleName}",
        OutputRef = $"az://{Container}/out/{Path.GetFileNameWithoutExtension(contentName)}.png",
        Options = new StylizeOptions { Format = OutputFormat.Png, Seed = seed },
    };

    /// <summary>Sends to the job queue's exchange, as the submitter does: a "queue:" address would declare the
    /// queue itself (classic), which the worker's quorum queue refuses. Until a worker has bound its queue the
    /// broker returns the message (mandatory); it is sent again.</summary>
    public async Task SendAsync(IEnumerable<StylizeImage> jobs, CancellationToken ct, string? exchange = null)
    {
        var endpoint = await _bus!.GetSendEndpoint(new Uri($"exchange:{exchange ?? QueueName}"));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        foreach (var job in jobs)
        {
            while (true)
            {
                try
                {
                    await endpoint.Send(job, c =>
                    {
                        if (c.TryGetPayload<RabbitMqSendContext>(out var rabbit)) rabbit.Mandatory = true;
                    }, ct);
                    break;
                }
                catch (MessageReturnedException) when (DateTime.UtcNow < deadline)
                {
                    await Task.Delay(200, ct);
                }
            }
        }
    }

    public async Task WaitForOutcomesAsync(int distinctJobs, TimeSpan timeout, Func<string> diagnostics, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DistinctOutcomes < distinctJobs)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{DistinctOutcomes}/{distinctJobs} jobs had an outcome after {timeout}\n{diagnostics()}");
            }

            await Task.Delay(100, ct);
        }
    }

    public int DistinctOutcomes => Completed.Select(c => c.JobId).Concat(Failed.Select(f => f.JobId)).Distinct().Count();

    public async Task<List<BlobItem>> OutputsAsync(CancellationToken ct)
    {
        var items = new List<BlobItem>();
        await foreach (var item in Store.ListAsync("out/", ct)) items.Add(item);
        return items;
    }

    public async ValueTask DisposeAsync()
    {
        if (_bus is not null) await _bus.StopAsync(CancellationToken.None);
        await _provider.DisposeAsync();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
