using System.Threading.Channels;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Inference;
using MambaSt.Batch.Processing;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Jobs;
using MambaSt.Batch.Submitter.Storage;

using MassTransit;

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

using Spectre.Console;

namespace MambaSt.Batch.Submitter.Local;

public sealed record LocalResult(int Total, int Written, int AlreadyPresent, int Failed, string OutputFolder, IReadOnlyList<OutcomeRecord> Failures, string BatchId);

/// <summary>
/// <c>stylize</c>: the worker's pipeline and consumer hosted in this process on MassTransit's in-memory
/// transport, local folders as storage, the bundled model. Same job ids, output names and events as the
/// distributed path.
/// </summary>
public sealed class LocalStylize(IAnsiConsole console)
{
    public async Task<LocalResult> RunAsync(string input, string style, string outputFolder, StylizeOptions options, CancellationToken cancellationToken)
    {
        var inputFull = Path.GetFullPath(input);
        var (source, prefix) = File.Exists(inputFull)
            ? (new LocalArchiveStore(Path.GetDirectoryName(inputFull)!), Path.GetFileName(inputFull))
            : Directory.Exists(inputFull) ? (new LocalArchiveStore(inputFull), "") : throw new UsageException($"input '{input}' does not exist (expected a folder or an image file)");
        var styleFull = Path.GetFullPath(style);
        if (!File.Exists(styleFull)) throw new UsageException($"style file '{style}' does not exist");
        var output = new LocalArchiveStore(outputFolder);
        if (output.Root == source.Root && prefix.Length == 0) throw new UsageException("--out must not be the input folder");

        var items = new List<ArchiveItem>();
        await foreach (var item in source.ListAsync(prefix, cancellationToken))
        {
            if (ImageFiles.IsImage(item.RelativePath) && !Path.GetFullPath(item.Ref).StartsWith(output.Root + Path.DirectorySeparatorChar, StringComparison.Ordinal)) items.Add(item);
        }

        if (items.Count == 0) throw new UsageException($"no images (jpg, png, webp, tiff, ...) under {input}");

        var styleIdentity = $"style:sha256:{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(styleFull, cancellationToken)))}";
        var batchId = JobIdentity.BatchId(source.Location + "|" + prefix, styleIdentity, options);
        var info = new BatchInfo { BatchId = batchId, Source = inputFull, Output = output.Root, StyleRef = styleFull, Options = options, Queue = "in-memory" };
        var jobs = new List<JobRecord>();
        foreach (var item in items)
        {
            var identity = await source.IdentifyAsync(item, cancellationToken);
            var outputPath = JobIdentity.OutputName(item.RelativePath, options.Format);
            jobs.Add(new JobRecord { JobId = JobIdentity.JobId(identity, styleIdentity, options), RelativePath = item.RelativePath, ContentRef = item.Ref, OutputRef = output.RefFor(outputPath), OutputPath = outputPath });
        }

        jobs = jobs.DistinctBy(j => j.JobId).ToList();
        JobIdentity.EnsureDistinctOutputs(jobs, options.Format, JobIdentity.NamesIgnoreCase(localOutput: true));
        info = info with { CreatedAt = DateTimeOffset.UtcNow };
        var present = jobs.Where(j => File.Exists(j.OutputRef)).ToList();
        var todo = jobs.Except(present).ToList();
        Directory.CreateDirectory(output.Root);

        var outcomes = new Dictionary<Guid, OutcomeRecord>();
        if (todo.Count > 0)
        {
            using var host = BuildHost(output.Root, source.Root, Path.GetDirectoryName(styleFull)!);
            try
            {
                await host.StartAsync(cancellationToken);
            }
            catch (OptionsValidationException ex)
            {
                throw new UsageException($"invalid setting: {string.Join("; ", ex.Failures)}");
            }

            // The log providers are cleared: say here which selective scan runs, and why not the fused one.
            MambaStEngine engine;
            try
            {
                engine = host.Services.GetRequiredService<MambaStEngine>();
            }
            catch (InferenceException ex)
            {
                throw new UsageException($"the model cannot be loaded: {ex.Message}");
            }

            console.MarkupLineInterpolated($"model {engine.Model.Id} {engine.Model.Version}: {engine.Model.ScanVariant} scan{(engine.CustomOpLibrary is null ? "" : $" ({engine.CustomOpLibrary})")}");
            if (engine.ScanFallback is not null)
            {
                console.MarkupLineInterpolated($"[yellow]warning:[/] not the fused scan, about 3.5x slower: {engine.ScanFallback} (Inference__Scan=sequential silences this)");
            }

            try
            {
                var events = host.Services.GetRequiredService<LocalOutcomes>();
                var bus = host.Services.GetRequiredService<IBus>();
                var queue = host.Services.GetRequiredService<IOptions<WorkerOptions>>().Value.QueueName;
                var endpoint = await bus.GetSendEndpoint(new Uri($"queue:{queue}"));
                var submittedAt = DateTimeOffset.UtcNow;
                foreach (var job in todo) await endpoint.Send(Submission.ToMessage(info, job, submittedAt), cancellationToken);

                var ids = todo.Select(j => j.JobId).ToHashSet();
                await console.Progress()
                    .AutoClear(false)
                    .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .StartAsync(async ctx =>
                    {
                        var task = ctx.AddTask($"stylizing {todo.Count} images", maxValue: todo.Count);
                        while (outcomes.Count < ids.Count)
                        {
                            var record = await events.Reader.ReadAsync(cancellationToken);
                            if (!ids.Contains(record.JobId)) continue;
                            BatchState.Merge(outcomes, record);
                            task.Value = outcomes.Count;
                            var failedSoFar = outcomes.Values.Count(o => o.Status == JobStatus.Failed);
                            task.Description = $"stylized {outcomes.Count - failedSoFar}, failed {failedSoFar} of {todo.Count}";
                        }
                    });
            }
            finally
            {
                await host.StopAsync(CancellationToken.None);
            }
        }

        await WriteRecordsAsync(output, info, jobs, present, outcomes.Values, cancellationToken);
        var failures = outcomes.Values.Where(o => o.Status == JobStatus.Failed).ToList();
        var result = new LocalResult(jobs.Count, outcomes.Count - failures.Count, present.Count, failures.Count, output.Root, failures, batchId);
        PrintSummary(result, jobs);
        return result;
    }

    /// <summary>
    /// The same records <c>submit</c> and <c>watch</c> keep, so <c>report</c> (CSV, JSON, HTML) reads a local run like a
    /// distributed one. Outputs that were already present count as reused.
    /// </summary>
    private static async Task WriteRecordsAsync(LocalArchiveStore output, BatchInfo info, IReadOnlyList<JobRecord> jobs, IReadOnlyList<JobRecord> present, IEnumerable<OutcomeRecord> outcomes, CancellationToken ct)
    {
        await output.WriteTextAsync(BatchPaths.Batch(info.BatchId), System.Text.Json.JsonSerializer.Serialize(info, JsonLines.Options), ct);
        await output.WriteTextAsync(BatchPaths.Jobs(info.BatchId), JsonLines.Write(jobs), ct);
        var now = DateTimeOffset.UtcNow;
        var records = outcomes.Concat(present.Select(j => new OutcomeRecord { JobId = j.JobId, Status = JobStatus.Done, OutputRef = j.OutputRef, Reused = true, At = now }));
        await output.WriteTextAsync(BatchPaths.Events(info.BatchId, BatchPaths.RunId()), JsonLines.Write(records), ct);
    }

    private void PrintSummary(LocalResult result, IReadOnlyList<JobRecord> jobs)
    {
        console.MarkupLineInterpolated($"[bold]{result.Written}[/] outputs written, {result.AlreadyPresent} already present, [bold]{result.Failed}[/] failed, of {result.Total} images");
        if (result.Failures.Count > 0)
        {
            var byId = jobs.ToDictionary(j => j.JobId);
            var table = new Table().AddColumns("image", "error", "reason");
            foreach (var f in result.Failures) table.AddRow(Markup.Escape(byId[f.JobId].RelativePath), Markup.Escape(f.ErrorCode?.ToString() ?? ""), Markup.Escape(f.Message ?? ""));
            console.Write(table);
        }

        console.MarkupLineInterpolated($"outputs are in {result.OutputFolder}");
    }

    /// <summary>The in-process worker may touch the input folder, the style's folder and the output folder, nothing else.</summary>
    private static IHost BuildHost(string outputRoot, string inputRoot, string styleFolder)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Inference:ModelDirectory"] = BundledModel.Find(),
            ["Storage:LocalRoot"] = outputRoot,
            ["Storage:AllowedLocalRoots:0"] = outputRoot,
            ["Storage:AllowedLocalRoots:1"] = inputRoot,
            ["Storage:AllowedLocalRoots:2"] = styleFolder,
        });
        builder.Configuration.AddEnvironmentVariables();
        builder.Logging.ClearProviders();
        builder.Services.AddStylizationPipeline(builder.Configuration);
        builder.Services.AddSingleton<LocalOutcomes>();
        builder.Services.AddMassTransit(x =>
        {
            x.DisableUsageTelemetry();
            x.AddStylizationConsumer();
            x.AddConsumer<LocalOutcomeConsumer>();
            x.UsingInMemory((ctx, cfg) => cfg.ConfigureEndpoints(ctx));
        });
        return builder.Build();
    }
}

/// <summary>The outcomes of the in-process run, in arrival order. Thread-safe.</summary>
public sealed class LocalOutcomes
{
    private readonly Channel<OutcomeRecord> _channel = Channel.CreateUnbounded<OutcomeRecord>();

    public ChannelReader<OutcomeRecord> Reader => _channel.Reader;

    public void Add(OutcomeRecord record) => _channel.Writer.TryWrite(record);
}

public sealed class LocalOutcomeConsumer(LocalOutcomes outcomes) : IConsumer<ImageStylized>, IConsumer<ImageStylizationFailed>
{
    public Task Consume(ConsumeContext<ImageStylized> context)
    {
        outcomes.Add(OutcomeRecord.From(context.Message));
        return Task.CompletedTask;
    }

    public Task Consume(ConsumeContext<ImageStylizationFailed> context)
    {
        outcomes.Add(OutcomeRecord.From(context.Message));
        return Task.CompletedTask;
    }
}

/// <summary>Finds the bundled model: Inference__ModelDirectory when set, else models/default next to the app or in the repository above it.</summary>
public static class BundledModel
{
    public static string? Find()
    {
        if (!string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("Inference__ModelDirectory"))) return null;
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "models", "default");
                if (Directory.Exists(candidate)) return candidate;
            }
        }

        throw new UsageException("no model: models/default was not found next to mambast or in the repository; set Inference__ModelDirectory to a model folder");
    }
}
