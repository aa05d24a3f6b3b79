using System.CommandLine;
using System.CommandLine.Help;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Storage;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Broker;
using MambaSt.Batch.Submitter.Jobs;
using MambaSt.Batch.Submitter.Local;
using MambaSt.Batch.Submitter.Storage;

using Spectre.Console;

namespace MambaSt.Batch.Submitter;

/// <summary>The <c>mambast</c> command line: parsing, dispatch, and turning failures into exit codes and plain messages.</summary>
public sealed class Cli
{
    private readonly IAnsiConsole _console;
    private readonly TextWriter _out;
    private readonly TextWriter _error;

    private readonly Option<bool> _verbose = new("--verbose", "-v") { Description = "Print stack traces of errors.", Recursive = true };
    private readonly Option<string?> _storageConnection = new("--storage-connection-string") { Description = "Azure Storage connection string for az:// locations (prefer the Storage__ConnectionString environment variable: a command line is visible to other users).", Recursive = true };
    private readonly Option<string?> _broker = new("--broker") { Description = "RabbitMQ URL (amqp://user:pass@host:port/vhost). Default: Broker__Url, else amqp://localhost:5672/." };
    private readonly Option<string?> _queue = new("--queue") { Description = "The worker's queue. Default: Worker__QueueName, else stylize-image." };
    private readonly Option<string> _batchId = new("--batch-id") { Description = "The batch id printed by submit.", Required = true };
    private readonly Option<string?> _outputOfBatch = new("--output", "--out") { Description = "The batch's output location (needed only on another machine than the one that submitted)." };
    private readonly Option<int> _maxInFlight = new("--max-in-flight") { Description = "Most sends awaiting the broker's confirm at once.", DefaultValueFactory = _ => 256 };

    public Cli(TextWriter output, TextWriter error, IAnsiConsole? console = null)
    {
        _out = output;
        _error = error;
        _console = console ?? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        Range(_maxInFlight, 1, 100_000);
    }

    /// <summary>
    /// How long Ctrl-C or SIGTERM waits for the command to wind down before the process exits anyway. submit then
    /// stops starting sends, awaits the confirms of those in flight (up to --max-in-flight), stops the bus and writes
    /// <c>enqueued-&lt;run&gt;.jsonl</c> (a storage write with retries); System.CommandLine's default of 2 s cut that short.
    /// </summary>
    public static readonly TimeSpan TerminationGrace = TimeSpan.FromSeconds(30);

    public static Task<int> RunAsync(string[] args, CancellationToken cancellationToken = default) =>
        new Cli(Console.Out, Console.Error, AnsiConsole.Console).InvokeAsync(args, cancellationToken);

    public async Task<int> InvokeAsync(string[] args, CancellationToken cancellationToken = default)
    {
        var parse = BuildRoot().Parse(args);
        var verbose = parse.GetValue(_verbose);
        if (parse.Errors.Count > 0 && parse.Action is not HelpAction)
        {
            foreach (var error in parse.Errors) await _error.WriteLineAsync($"error: {Shown(error.Message)}");
            await _error.WriteLineAsync("Run 'mambast --help' or 'mambast <command> --help' for usage.");
            return ExitCodes.UsageError;
        }

        if (parse.GetValue(_storageConnection) is { Length: > 0 } connection) Environment.SetEnvironmentVariable("Storage__ConnectionString", connection);
        try
        {
            return await parse.InvokeAsync(InvocationSettings(), cancellationToken);
        }
        catch (CliException ex)
        {
            await _error.WriteLineAsync($"error: {Shown(ex.Message)}");
            if (verbose) await _error.WriteLineAsync(Shown(ex.ToString()));
            return ex.ExitCode;
        }
        catch (OperationCanceledException)
        {
            await _error.WriteLineAsync("canceled");
            return ExitCodes.Canceled;
        }
        catch (MambaSt.Batch.Storage.StorageException ex)
        {
            await _error.WriteLineAsync($"error: storage: {Shown(ex.Message)}");
            if (verbose) await _error.WriteLineAsync(Shown(ex.ToString()));
            return ex.Kind is MambaSt.Batch.Storage.StorageErrorKind.NotFound or MambaSt.Batch.Storage.StorageErrorKind.InvalidName
                or MambaSt.Batch.Storage.StorageErrorKind.NotConfigured ? ExitCodes.UsageError : ExitCodes.Unreachable;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await _error.WriteLineAsync($"error: storage: {Shown(ex.Message)}");
            if (verbose) await _error.WriteLineAsync(Shown(ex.ToString()));
            return ExitCodes.Unreachable;
        }
        catch (Exception ex)
        {
            await _error.WriteLineAsync($"error: {Shown(ex.GetBaseException().Message)}{(verbose ? "" : " (run with --verbose for details)")}");
            if (verbose) await _error.WriteLineAsync(Shown(ex.ToString()));
            return ExitCodes.Unreachable;
        }
    }

    /// <summary>
    /// Text as it may be printed: a SAS signature or account key in it (a location, a reference, an error message) is
    /// replaced. The batch records keep the SAS, since the jobs are sent again with it; nothing prints it.
    /// </summary>
    internal static string Shown(string text) => StorageLocation.RedactSecrets(text);

    internal InvocationConfiguration InvocationSettings() => new()
    {
        Output = _out,
        Error = _error,
        EnableDefaultExceptionHandler = false,
        ProcessTerminationTimeout = TerminationGrace,
    };

    public RootCommand BuildRoot()
    {
        var root = new RootCommand("mambast: stylize photo archives with Mamba-ST, on RabbitMQ workers (submit, watch, report, retry-failed) or in process (stylize).");
        root.Options.Add(_verbose);
        root.Options.Add(_storageConnection);
        root.Subcommands.Add(SubmitCommand());
        root.Subcommands.Add(WatchCommand());
        root.Subcommands.Add(ReportCommand());
        root.Subcommands.Add(RetryFailedCommand());
        root.Subcommands.Add(RetryPendingCommand());
        root.Subcommands.Add(StylizeCommand());
        return root;
    }

    private sealed record StyleOptions(Option<int> MaxSide, Option<string> Format, Option<int> Quality, Option<long> Seed, Option<float> Strength, Option<bool> PreserveColor)
    {
        public StylizeOptions Read(ParseResult parse) => new()
        {
            MaxSide = parse.GetValue(MaxSide),
            Format = Enum.Parse<OutputFormat>(parse.GetValue(Format)!, ignoreCase: true),
            Quality = parse.GetValue(Quality),
            Seed = parse.GetValue(Seed),
            Strength = parse.GetValue(Strength),
            PreserveColor = parse.GetValue(PreserveColor),
        };
    }

    private static StyleOptions AddStyleOptions(Command command)
    {
        var maxSide = new Option<int>("--max-side") { Description = "Longest side of the output in pixels (64-8192).", DefaultValueFactory = _ => StylizeOptions.DefaultMaxSide };
        var format = new Option<string>("--format") { Description = "Output format: jpeg, png or webp.", DefaultValueFactory = _ => "jpeg" };
        format.AcceptOnlyFromAmong("jpeg", "png", "webp");
        var quality = new Option<int>("--quality") { Description = "Encoder quality 1-100 (jpeg, webp).", DefaultValueFactory = _ => 90 };
        var seed = new Option<long>("--seed") { Description = "Seed of the style-token permutation: same inputs and seed, same output." };
        var strength = new Option<float>("--strength") { Description = "0 keeps the content, 1 is full style.", DefaultValueFactory = _ => 1.0f };
        var preserve = new Option<bool>("--preserve-color") { Description = "Keep the content's colours." };
        Range(maxSide, 64, 8192);
        Range(quality, 1, 100);
        strength.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<float>();
            if (!(v >= 0f && v <= 1f)) r.AddError($"--strength must be between 0 and 1 (got {v})");
        });
        foreach (var o in new Option[] { maxSide, format, quality, seed, strength, preserve }) command.Options.Add(o);
        return new StyleOptions(maxSide, format, quality, seed, strength, preserve);
    }

    private static void Range(Option<int> option, int min, int max) => option.Validators.Add(r =>
    {
        var v = r.GetValueOrDefault<int>();
        if (v < min || v > max) r.AddError($"{option.Name} must be between {min} and {max} (got {v})");
    });

    private Command SubmitCommand()
    {
        var source = new Argument<string>("source") { Description = "Images to stylize: a local folder or file (uploaded first when the output is in blob storage) or a blob prefix (az://container/prefix)." };
        var style = new Option<string>("--style") { Description = "The style image: a local file (uploaded when the output is in blob storage) or a blob.", Required = true };
        var output = new Option<string>("--output", "--out") { Description = "Where outputs go (folder or blob prefix): <output>/<relative path without extension>.<format>.", Required = true };
        var batchId = new Option<string?>("--batch-id") { Description = "Batch id. Default: derived from source, style and options (printed)." };
        var dryRun = new Option<bool>("--dry-run") { Description = "List what would be enqueued; write and send nothing." };
        var uploads = new Option<int>("--upload-parallelism") { Description = "Concurrent uploads of local inputs.", DefaultValueFactory = _ => 8 };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace outputs that another job made (another style, options or source): they are deleted and their jobs sent." };
        Range(uploads, 1, 64);
        var command = new Command("submit", "Enqueue one StylizeImage job per image; skips jobs whose output is already theirs (metadata) or that an earlier run enqueued.")
        {
            source, style, output, batchId, dryRun, _maxInFlight, uploads, _broker, _queue, overwrite,
        };
        var styleOptions = AddStyleOptions(command);
        command.SetAction(async (parse, ct) =>
        {
            var dry = parse.GetValue(dryRun);
            var request = new SubmitRequest
            {
                Source = parse.GetValue(source)!,
                Style = parse.GetValue(style)!,
                Output = parse.GetValue(output)!,
                Options = styleOptions.Read(parse),
                BatchId = parse.GetValue(batchId),
                DryRun = dry,
                MaxInFlight = parse.GetValue(_maxInFlight),
                UploadParallelism = parse.GetValue(uploads),
                Broker = BrokerSettings.Resolve(parse.GetValue(_broker), parse.GetValue(_queue)),
                Overwrite = parse.GetValue(overwrite),
            };
            if (request.BatchId is not null) Submission.ValidateBatchId(request.BatchId);
            var result = await new Submission().RunAsync(request, ct);
            if (dry)
            {
                var table = new Table().AddColumns("job id", "content", "output");
                foreach (var job in result.ToEnqueue) table.AddRow(Markup.Escape(job.JobId.ToString()), Markup.Escape(Shown(job.ContentRef)), Markup.Escape(Shown(job.OutputRef)));
                _console.Write(table);
            }

            await WriteMismatchesAsync(result.Mismatches, result.MismatchCount, parse.GetValue(overwrite) ? (dry ? "would be replaced (--overwrite)" : $"replaced (--overwrite): {result.Overwritten} deleted, their jobs sent") : "not replaced; pass --overwrite to replace them");
            _console.MarkupLineInterpolated($"batch [bold]{result.BatchId}[/]: {result.Total} jobs, {result.AlreadyDone} already done, {result.AlreadyEnqueued} enqueued earlier, {(dry ? "would enqueue" : "enqueued")} {(dry ? result.ToEnqueue.Count : result.Enqueued)}{(result.Uploaded > 0 ? $", uploaded {result.Uploaded} files" : "")}{(result.MismatchCount > 0 ? $", {result.MismatchCount} outputs made by another job" : "")}");
            if (!dry) _console.MarkupLineInterpolated($"follow it with: mambast watch --batch-id {result.BatchId}");
            return ExitCodes.Success;
        });
        return command;
    }

    private Command WatchCommand()
    {
        var keepQueue = new Option<bool>("--keep-queue") { Description = "Keep the batch's event queue when the batch completes." };
        var command = new Command("watch", "Show a batch's progress until every job has an outcome. Exit 0: all done; 1: some failed.")
        {
            _batchId, _outputOfBatch, _broker, keepQueue,
        };
        command.SetAction(async (parse, ct) =>
        {
            var batch = parse.GetValue(_batchId)!;
            Submission.ValidateBatchId(batch);
            var output = ArchiveStores.Open(LocalBatchIndex.Resolve(batch, parse.GetValue(_outputOfBatch)));
            var broker = BrokerSettings.Resolve(parse.GetValue(_broker), null);
            var result = await new BatchWatch(_console).RunAsync(output, batch, broker, parse.GetValue(keepQueue), ct);
            if (result.RecordWarning is { } warning) await _error.WriteLineAsync($"warning: {Shown(warning)}");
            await WriteMismatchesAsync(result.Mismatches, result.MismatchCount, $"not done; replace them with: mambast submit ... --batch-id {batch} --overwrite");
            var pendingAge = result.OldestPending is { } age ? $" (oldest waiting {BatchWatch.Age(age)} since its last send)" : "";
            _console.MarkupLineInterpolated($"batch [bold]{batch}[/]: {result.Done} done, {result.Failed} failed, {result.Pending} pending{pendingAge} of {result.Total}; outputs under {Shown(output.Location)}");
            if (result.Pending > 0) _console.MarkupLineInterpolated($"pending jobs whose message was lost: mambast retry-pending --batch-id {batch} --older-than 2h");
            if (result.Failed > 0) _console.MarkupLineInterpolated($"details: mambast report --batch-id {batch}; resubmit: mambast retry-failed --batch-id {batch}");
            if (!result.Completed) return ExitCodes.Canceled;
            return result.Failed > 0 ? ExitCodes.JobsFailed : ExitCodes.Success;
        });
        return command;
    }

    private Command ReportCommand()
    {
        var format = new Option<string>("--format") { Description = "csv, json, or html (one self-contained page with plots and thumbnails; needs --out-file).", DefaultValueFactory = _ => "csv" };
        format.AcceptOnlyFromAmong("csv", "json", "html");
        var file = new Option<FileInfo?>("--out-file", "-o") { Description = "Write the report to this file instead of standard output." };
        var sample = new Option<int>("--sample") { Description = "html: how many jobs to show as thumbnails (all, in a smaller batch).", DefaultValueFactory = _ => 48 };
        sample.Validators.Add(r =>
        {
            if (r.GetValue(sample) is < 0 or > 1000) r.AddError("--sample must be between 0 and 1000");
        });
        var command = new Command("report", "A batch's jobs and outcomes: CSV or JSON rows (id, content, status, output, timings, error), or an HTML page.")
        {
            _batchId, _outputOfBatch, format, file, sample,
        };
        command.SetAction(async (parse, ct) =>
        {
            var batch = parse.GetValue(_batchId)!;
            Submission.ValidateBatchId(batch);
            var output = ArchiveStores.Open(LocalBatchIndex.Resolve(batch, parse.GetValue(_outputOfBatch)));
            if (parse.GetValue(format) == "html")
            {
                var htmlFile = parse.GetValue(file) ?? throw new UsageException("--format html writes a file: pass --out-file report.html");
                var written = await HtmlReports.WriteAsync(output, batch, htmlFile.FullName, new HtmlReportOptions { Sample = parse.GetValue(sample) }, ct);
                await _error.WriteLineAsync($"report of {written.Jobs} jobs ({written.Done} done, {written.Failed} failed, {written.Pending} pending, {written.Thumbnails} thumbnails, {written.Bytes / 1024} KiB) written to {htmlFile.FullName}");
                return ExitCodes.Success;
            }

            var issues = new RecordIssues();
            var rows = await BatchReport.BuildAsync(output, batch, ct, issues);
            if (issues.Summary is { } warning) await _error.WriteLineAsync($"warning: {Shown(warning)}");
            var text = parse.GetValue(format) == "json" ? BatchReport.ToJson(rows) : BatchReport.ToCsv(rows);
            if (parse.GetValue(file) is { } target)
            {
                await File.WriteAllTextAsync(target.FullName, text, ct);
                await _error.WriteLineAsync($"{rows.Count} rows written to {target.FullName}");
            }
            else
            {
                await _out.WriteAsync(text);
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private Command RetryFailedCommand()
    {
        var command = new Command("retry-failed", "Send the failed jobs of a batch again (same job ids).")
        {
            _batchId, _outputOfBatch, _broker, _queue, _maxInFlight,
        };
        command.SetAction(async (parse, ct) =>
        {
            var batch = parse.GetValue(_batchId)!;
            Submission.ValidateBatchId(batch);
            var output = ArchiveStores.Open(LocalBatchIndex.Resolve(batch, parse.GetValue(_outputOfBatch)));
            var broker = BrokerSettings.Resolve(parse.GetValue(_broker), parse.GetValue(_queue));
            var count = await RetryFailed.RunAsync(output, batch, broker, queueGiven: !string.IsNullOrWhiteSpace(parse.GetValue(_queue)), parse.GetValue(_maxInFlight), null, ct);
            _console.MarkupLineInterpolated($"batch [bold]{batch}[/]: {count} failed jobs sent again; follow with: mambast watch --batch-id {batch}");
            return ExitCodes.Success;
        });
        return command;
    }

    private Command RetryPendingCommand()
    {
        var olderThan = new Option<TimeSpan>("--older-than")
        {
            Description = "Only jobs whose latest send is at least this old (90s, 30m, 2h, 1d, or hh:mm:ss). Default 2h: a job still queued behind others is sent twice otherwise (harmless, but work).",
            DefaultValueFactory = _ => TimeSpan.FromHours(2),
            CustomParser = r => ParseAge(r.Tokens.Single().Value) ?? AddError(r, $"--older-than '{r.Tokens.Single().Value}' is not a duration (90s, 30m, 2h, 1d or hh:mm:ss)"),
        };
        var command = new Command("retry-pending", "Send again the jobs of a batch that have no outcome (their message may have been lost); safe: outputs are create-if-absent with metadata.")
        {
            _batchId, _outputOfBatch, _broker, _queue, _maxInFlight, olderThan,
        };
        command.SetAction(async (parse, ct) =>
        {
            var batch = parse.GetValue(_batchId)!;
            Submission.ValidateBatchId(batch);
            var output = ArchiveStores.Open(LocalBatchIndex.Resolve(batch, parse.GetValue(_outputOfBatch)));
            var broker = BrokerSettings.Resolve(parse.GetValue(_broker), parse.GetValue(_queue));
            var age = parse.GetValue(olderThan);
            var count = await RetryPending.RunAsync(output, batch, broker, queueGiven: !string.IsNullOrWhiteSpace(parse.GetValue(_queue)), age, parse.GetValue(_maxInFlight), null, ct);
            _console.MarkupLineInterpolated($"batch [bold]{batch}[/]: {count} pending jobs (last sent over {BatchWatch.Age(age)} ago) sent again; follow with: mambast watch --batch-id {batch}");
            return ExitCodes.Success;
        });
        return command;

        static TimeSpan AddError(System.CommandLine.Parsing.ArgumentResult result, string message)
        {
            result.AddError(message);
            return default;
        }
    }

    /// <summary>90s, 30m, 2h, 1d (a number and a unit), or a TimeSpan (hh:mm:ss); null when neither, or negative.</summary>
    internal static TimeSpan? ParseAge(string text)
    {
        text = text.Trim();
        if (text.Length >= 2 && double.TryParse(text[..^1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= 0 && double.IsFinite(n))
        {
            switch (char.ToLowerInvariant(text[^1]))
            {
                case 's': return TimeSpan.FromSeconds(n);
                case 'm': return TimeSpan.FromMinutes(n);
                case 'h': return TimeSpan.FromHours(n);
                case 'd': return TimeSpan.FromDays(n);
            }
        }

        return TimeSpan.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var t) && t >= TimeSpan.Zero ? t : null;
    }

    private async Task WriteMismatchesAsync(IReadOnlyList<string> shown, int count, string what)
    {
        if (count == 0) return;
        await _error.WriteLineAsync($"warning: {count} outputs exist but were made by another job (other style, options or source), {what}:");
        foreach (var line in shown) await _error.WriteLineAsync($"  {Shown(line)}");
        if (count > shown.Count) await _error.WriteLineAsync($"  ... and {count - shown.Count} more");
    }

    private Command StylizeCommand()
    {
        var input = new Argument<string>("input") { Description = "A folder of images or one image." };
        var style = new Option<string>("--style") { Description = "The style image file.", Required = true };
        var output = new Option<string>("--out", "--output") { Description = "Output folder.", Required = true };
        var report = new Option<FileInfo?>("--report") { Description = "Also write the batch's HTML report (as mambast report --format html) to this file." };
        var command = new Command("stylize", "Local mode: stylize a folder on this machine, in process, with the bundled model; no servers.")
        {
            input, style, output, report,
        };
        var styleOptions = AddStyleOptions(command);
        command.SetAction(async (parse, ct) =>
        {
            var result = await new LocalStylize(_console).RunAsync(parse.GetValue(input)!, parse.GetValue(style)!, parse.GetValue(output)!, styleOptions.Read(parse), ct);
            if (parse.GetValue(report) is { } reportFile)
            {
                await HtmlReports.WriteAsync(new LocalArchiveStore(result.OutputFolder), result.BatchId, reportFile.FullName, new HtmlReportOptions(), ct);
                _console.MarkupLineInterpolated($"report: {reportFile.FullName}");
            }

            return result.Failed > 0 ? ExitCodes.JobsFailed : ExitCodes.Success;
        });
        return command;
    }
}
