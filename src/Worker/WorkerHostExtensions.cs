using MambaSt.Batch.Processing;
using MambaSt.Batch.Processing.Ports;
using MassTransit;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace MambaSt.Batch.Worker;

public static class WorkerHostExtensions
{
    /// <summary>Everything the worker host composes: pipeline, broker, health, telemetry, shutdown.</summary>
    public static WebApplicationBuilder AddWorkerServices(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        var configuration = builder.Configuration;

        if (string.IsNullOrEmpty(configuration["ASPNETCORE_HTTP_PORTS"]) && string.IsNullOrEmpty(configuration["ASPNETCORE_URLS"]) && string.IsNullOrEmpty(configuration["urls"]))
        {
            builder.WebHost.UseUrls($"http://0.0.0.0:{configuration.GetValue("Health:Port", 8080)}");
        }

        services.AddStylizationPipeline(configuration);
        services.AddRabbitMqRedelivery();
        services.AddCloudEventsPublishing();

        // Load the model before the bus starts taking messages (hosted services start in order).
        services.AddSingleton<ModelWarmup>();
        services.AddHostedService(sp => sp.GetRequiredService<ModelWarmup>());

        var stopTimeout = TimeSpan.FromSeconds(configuration.GetValue("Worker:StopTimeoutSeconds", 120));
        services.Configure<HostOptions>(o => o.ShutdownTimeout = stopTimeout + TimeSpan.FromSeconds(10));
        services.AddOptions<MassTransitHostOptions>().Configure(o =>
        {
            o.WaitUntilStarted = false;
            o.StopTimeout = stopTimeout;
        });

        // Before the bus (hosted services start in order): a queue left with other arguments stops the start
        // with a message naming the migration step.
        services.AddHostedService<QueueTopologyCheck>();

        services.AddMassTransit(bus =>
        {
            bus.DisableUsageTelemetry();
            bus.AddStylizationConsumer();
            bus.AddConsumer<IsolatedJobConsumer, IsolatedJobConsumerDefinition>();
            bus.AddConsumer<QuarantinedJobConsumer, QuarantinedJobConsumerDefinition>();
            bus.UsingRabbitMq((context, cfg) =>
            {
                var worker = context.GetRequiredService<IOptions<WorkerOptions>>().Value;
                var errorArguments = QueueTopology.ErrorQueueArguments(worker);
                cfg.SendTopology.ConfigureErrorSettings = settings =>
                {
                    foreach (var (key, value) in errorArguments) settings.SetQueueArgument(key, value);
                };
                var broker = context.GetRequiredService<IOptions<BrokerOptions>>().Value;
                cfg.Host(broker.ToUri(), host =>
                {
                    if (!string.IsNullOrEmpty(broker.Username)) host.Username(broker.Username);
                    if (!string.IsNullOrEmpty(broker.Password)) host.Password(broker.Password);
                    host.PublisherConfirmation = true;
                    host.RequestedConnectionTimeout(TimeSpan.FromSeconds(10));
                });
                cfg.ConfigureEndpoints(context);
            });
        });

        services.AddHostedService<ModelProbe>();
        services.AddHealthChecks()
            .AddCheck<ModelLoadedHealthCheck>("model", tags: ["ready"])
            .AddCheck<ModelWorkingHealthCheck>("model-runs", tags: ["ready"])
            .AddCheck<NotWedgedHealthCheck>("progress", tags: ["live"]);

        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("mambast-worker", serviceInstanceId: configuration["Worker:WorkerId"] ?? Environment.MachineName))
            .WithMetrics(m =>
            {
                m.AddMeter(StylizationMetrics.Name, "MassTransit").AddRuntimeInstrumentation();
                if (OtlpConfigured(configuration)) m.AddOtlpExporter();
            })
            .WithTracing(t =>
            {
                t.AddSource(StylizationMetrics.Name, "MassTransit");
                if (OtlpConfigured(configuration)) t.AddOtlpExporter();
            });

        builder.Logging.AddSimpleConsole(o =>
        {
            o.IncludeScopes = true;
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });

        return builder;
    }

    /// <summary>/health/live: the process answers and no batch is held past Worker:WedgedAfterSeconds.
    /// /health/ready: model loaded, its runs not failing (ModelHealth), broker connected.</summary>
    public static WebApplication MapWorkerHealthEndpoints(this WebApplication app)
    {
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = check => check.Tags.Contains("live") });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready") });
        return app;
    }

    private static bool OtlpConfigured(IConfiguration configuration) =>
        !string.IsNullOrEmpty(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
}

/// <summary>Resolves the model at start, so a bad model fails the process before any message is taken.</summary>
internal sealed class ModelWarmup(IStyleTransfer model, ILogger<ModelWarmup> logger) : IHostedService
{
    private volatile bool _loaded;

    public bool Loaded => _loaded;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        logger.LogInformation("Model {ModelId} {ModelVersion} loaded", model.Model.Id, model.Model.Version);
        _loaded = true;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

internal sealed class ModelLoadedHealthCheck(ModelWarmup warmup) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(warmup.Loaded ? HealthCheckResult.Healthy("model loaded") : HealthCheckResult.Unhealthy("model not loaded yet"));
}

internal sealed class ModelWorkingHealthCheck(ModelHealth health) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(health.Ready
            ? HealthCheckResult.Healthy("model runs succeed")
            : HealthCheckResult.Unhealthy($"{health.ConsecutiveFailures} consecutive model runs failed; taking no jobs until a probe run succeeds"));
}

internal sealed class NotWedgedHealthCheck(ModelHealth health, IOptions<WorkerOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(health.Wedged
            ? HealthCheckResult.Unhealthy($"a batch has been in hand for {health.OldestBatchAge.TotalSeconds:F0} s (Worker:WedgedAfterSeconds={options.Value.WedgedAfterSeconds})")
            : HealthCheckResult.Healthy());
}

/// <summary>While the worker is not ready (its model runs keep failing), tries one run on a synthetic image
/// every Worker:ProbeIntervalSeconds; a success makes it ready and lets the consumer take batches again.</summary>
internal sealed class ModelProbe(IStyleTransfer model, ModelHealth health, IOptions<WorkerOptions> options, ILogger<ModelProbe> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromSeconds(options.Value.ProbeIntervalSeconds);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (health.Ready) continue;
            try
            {
                var frame = Synthetic(64);
                var style = model.GetStyle("mambast-probe", () => Synthetic(64), out _);
                model.Stylize(style, [new StylizeItem(frame, 1, 1f, false)], stoppingToken);
                health.RunSucceeded();
                logger.LogInformation("Probe run succeeded; taking jobs again");
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogWarning("Probe run failed; still taking no jobs: {Message}", ex.Message);
            }
        }
    }

    private static RgbFrame Synthetic(int side)
    {
        var rgb = new byte[side * side * 3];
        for (var i = 0; i < rgb.Length; i++) rgb[i] = (byte)(i * 7 % 251);
        return new RgbFrame(rgb, side, side);
    }
}
