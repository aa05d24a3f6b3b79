using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;

using MambaSt.Batch.Imaging;
using MambaSt.Batch.Processing;
using MambaSt.Batch.Processing.Ports;
using MambaSt.Batch.Storage;
using MambaSt.Batch.Submitter.Storage;

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MambaSt.Batch.Submitter.Batches;

/// <summary>What was written: for the CLI's message and the tests.</summary>
public sealed record HtmlReportResult(long Jobs, long Done, long Failed, long Pending, int Thumbnails, long Bytes);

/// <summary>
/// <c>report --format html</c>: one self-contained page (inline CSS and SVG, thumbnails as data URIs, no script, nothing
/// fetched) that answers "did the night work, and what does it look like?". The records are folded one job at a time
/// (<see cref="ReportSummary"/>); only the sampled jobs' images are read.
/// </summary>
public sealed class BatchHtmlReport(IImageCodec codec, HtmlReportOptions options)
{
    private static readonly HtmlEncoder Html = HtmlEncoder.Default;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Reads the records three times, streamed: the winning outcome per job (a compact table), the winners'
    /// figures, then the job records; so memory grows with the number of jobs by one small entry each, never by
    /// whole records.</summary>
    public async Task<HtmlReportResult> WriteAsync(IArchiveStore output, string batchId, string outputFile, CancellationToken cancellationToken, RecordIssues? issues = null)
    {
        issues ??= new RecordIssues();
        var info = await BatchRecords.ReadInfoAsync(output, batchId, cancellationToken);
        var winners = new Dictionary<Guid, Winner>();
        await foreach (var sent in BatchRecords.ReadEnqueuedAsync(output, batchId, issues, cancellationToken))
        {
            if (sent.RetryOf is { } failedAt) Consider(winners, BatchState.Retried(sent, failedAt), -1);
        }

        long ordinal = 0;
        await foreach (var outcome in BatchRecords.ReadEventsAsync(output, batchId, new RecordIssues(), cancellationToken)) Consider(winners, outcome, ordinal++);

        var summary = new ReportSummary(options);
        foreach (var (jobId, winner) in winners)
        {
            if (winner.Status != JobStatus.Pending) summary.OfferSample(jobId);
        }

        ordinal = 0;
        await foreach (var outcome in BatchRecords.ReadEventsAsync(output, batchId, issues, cancellationToken))
        {
            if (winners.TryGetValue(outcome.JobId, out var w) && w.Ordinal == ordinal && w.Status != JobStatus.Pending) summary.AddOutcome(outcome);
            ordinal++;
        }

        await foreach (var job in BatchRecords.ReadJobsAsync(output, batchId, issues, cancellationToken))
        {
            summary.AddJob(job, winners.TryGetValue(job.JobId, out var w) ? w.Status : JobStatus.Pending);
        }

        await Parallel.ForEachAsync(summary.PendingToCheck, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (job, ct) =>
        {
            if ((await ExistingOutputs.CheckAsync(output, job, info.Options, null, ct)).Verdict == OutputVerdict.Done)
            {
                lock (summary) summary.PendingFoundDone(job);
            }
        });

        var style = await ThumbnailAsync(info.StyleRef, cancellationToken);
        var tiles = new List<Tile>();
        foreach (var sampled in summary.Sample())
        {
            tiles.Add(await TileAsync(summary, sampled, cancellationToken));
        }

        var page = Render(info, summary, style, tiles);
        var bytes = new UTF8Encoding(false).GetBytes(page);
        var directory = Path.GetDirectoryName(Path.GetFullPath(outputFile));
        if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        await File.WriteAllBytesAsync(outputFile, bytes, cancellationToken);
        return new HtmlReportResult(summary.Jobs, summary.Done, summary.Failed, summary.Pending, tiles.Count, bytes.Length);
    }

    private async Task<Tile> TileAsync(ReportSummary summary, SampledJob sampled, CancellationToken ct)
    {
        var job = sampled.Job;
        var content = await ThumbnailAsync(job.ContentRef, ct);
        Thumbnail? result = null;
        if (sampled.Outcome.Status == JobStatus.Done)
        {
            result = await ThumbnailAsync(sampled.Outcome.OutputRef ?? job.OutputRef, ct);
            if (sampled.Outcome.Quality is null && result is not null && content is not null)
            {
                var quality = OutputQualityMeter.Measure(content.Frame, Resized(result.Frame, content.Frame));
                if (summary.QualityProblem(quality) is { } problem) summary.Flag(job.JobId, sampled.Outcome.OutputRef, problem, job);
            }
        }

        return new Tile(sampled, content, result);
    }

    private RgbFrame Resized(RgbFrame image, RgbFrame like) =>
        image.Width == like.Width && image.Height == like.Height ? image : ToFrame(codec.Resize(new RgbImage(image.Width, image.Height, image.Rgb), like.Width, like.Height));

    private async Task<Thumbnail?> ThumbnailAsync(string location, CancellationToken ct)
    {
        try
        {
            var bytes = await ArchiveStores.ReadBytesAsync(location, options.MaxThumbnailSourceBytes, ct);
            if (bytes is null) return null;
            var image = codec.Decode(bytes, new DecodeOptions { MaxSide = options.ThumbnailSide });
            var jpeg = codec.Encode(image, new EncodeOptions { Format = Contracts.OutputFormat.Jpeg, Quality = 72 });
            return new Thumbnail("data:image/jpeg;base64," + Convert.ToBase64String(jpeg), image.Width, image.Height, ToFrame(image));
        }
        catch (Exception ex) when (ex is ImageException or StorageException or IOException or UnauthorizedAccessException or UsageException)
        {
            // A corrupt input or an unreadable location shows as "no preview"; its failure is already in the records.
            return null;
        }
    }

    private static RgbFrame ToFrame(RgbImage image) => new(image.Pixels, image.Width, image.Height);

    private string Render(BatchInfo info, ReportSummary s, Thumbnail? style, IReadOnlyList<Tile> tiles)
    {
        var wall = s.WallSeconds(info.CreatedAt == default ? null : info.CreatedAt);
        var computed = s.Done - s.Reused;
        var rate = wall > 0 ? computed / wall : 0;
        var outputLocation = StorageLocation.RedactSecrets(info.Output)!;
        var sb = new StringBuilder(1 << 20);
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
          .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
          .Append("<title>mambast batch ").Append(E(info.BatchId)).Append("</title><style>").Append(Css);
        if (style is not null) sb.Append(".style-thumb{background-image:url(").Append(style.DataUri).Append(")}");
        sb.Append("</style></head><body>\n");

        sb.Append("<header><h1>Batch <code>").Append(E(info.BatchId)).Append("</code></h1><p class=\"where\">output ")
          .Append(E(outputLocation)).Append(" &middot; style ").Append(E(StorageLocation.RedactSecrets(info.StyleRef)!))
          .Append(" &middot; report made ").Append(E(DateTimeOffset.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", Inv))).Append("</p>");
        var verdict = s.Failed == 0 && s.Pending == 0 && s.Flagged == 0 ? ("ok", "Every job finished with an output.")
            : s.Pending > 0 ? ("warn", $"{Jobs(s.Pending)} no outcome yet.")
            : ("bad", $"{Jobs(s.Failed)} failed, {s.Flagged} {(s.Flagged == 1 ? "output looks" : "outputs look")} broken.");
        sb.Append("<p class=\"verdict ").Append(verdict.Item1).Append("\" id=\"verdict\">").Append(E(verdict.Item2)).Append("</p></header>\n");

        sb.Append("<section id=\"summary\"><h2>Summary</h2><dl class=\"numbers\">");
        Stat(sb, "jobs", "Jobs", s.Jobs);
        Stat(sb, "done", "Done", s.Done);
        Stat(sb, "reused", "Reused", s.Reused);
        Stat(sb, "failed", "Failed", s.Failed);
        Stat(sb, "quarantined", "Quarantined", s.Quarantined);
        Stat(sb, "pending", "Pending", s.Pending);
        Stat(sb, "flagged", "Flagged outputs", s.Flagged);
        StatText(sb, "wall", "Wall time", Duration(wall));
        StatText(sb, "rate", "Images / s", rate.ToString("0.00", Inv));
        sb.Append("</dl><table class=\"kv\"><tr><th>Model</th><td id=\"models\">")
          .Append(s.Models.Count == 0 ? "&ndash;" : string.Join("<br>", s.Models.Select(m => E(m.Key) + $" ({m.Value})")))
          .Append("</td></tr><tr><th>Workers seen</th><td id=\"workers-seen\">").Append(s.Workers.Count.ToString(Inv)).Append("</td></tr>");
        if (s.FailureGroups.Count > 0)
        {
            sb.Append("<tr><th>Failed by error code</th><td>").Append(string.Join(", ", s.FailureGroups.Values.Select(g => $"{E(g.Code)} {g.Count}"))).Append("</td></tr>");
        }

        sb.Append("</table></section>\n");

        sb.Append("<section id=\"plots\"><h2>Throughput and timings</h2><div class=\"plots\">");
        sb.Append(ThroughputPlot(s, info.CreatedAt == default ? null : info.CreatedAt.ToUnixTimeSeconds())).Append(LatencyPlot(s)).Append(StagePlot(s)).Append(WorkerPlot(s));
        sb.Append("</div><p class=\"note\">Latency and stage times are per job, from the workers' events (reused outputs excluded); percentiles are read from logarithmic buckets, within about 6 %.</p></section>\n");

        sb.Append("<section id=\"samples\"><h2>Sample of outputs</h2><p class=\"note\">")
          .Append(tiles.Count.ToString(Inv)).Append(" of ").Append(s.Jobs.ToString(Inv))
          .Append(" jobs, chosen by job id (the same sample each time). Content | style | output; click an output to open it.</p><div class=\"grid\">");
        foreach (var t in tiles) AppendTile(sb, t);
        sb.Append("</div></section>\n");

        sb.Append("<section id=\"failures\"><h2>Failures</h2>");
        if (s.FailureGroups.Count == 0) sb.Append("<p>None.</p>");
        foreach (var g in s.FailureGroups.Values)
        {
            sb.Append("<div class=\"failure-group\" data-code=\"").Append(E(g.Code)).Append("\"><h3>").Append(E(g.Code)).Append(" <span class=\"count\">")
              .Append(g.Count.ToString(Inv)).Append("</span></h3><p class=\"message\">").Append(E(g.FirstMessage)).Append("</p><table><tr><th>job</th><th>input</th><th>message</th></tr>");
            foreach (var e in g.Examples)
            {
                sb.Append("<tr><td><code>").Append(e.JobId).Append("</code></td><td>").Append(E(e.RelativePath ?? "")).Append("</td><td>").Append(E(e.Message)).Append("</td></tr>");
            }

            sb.Append("</table>");
            if (g.Count > g.Examples.Count) sb.Append("<p class=\"note\">and ").Append((g.Count - g.Examples.Count).ToString(Inv)).Append(" more.</p>");
            sb.Append("</div>");
        }

        if (s.Failed > 0)
        {
            sb.Append("<p>Send the failed jobs again: <code id=\"retry-command\">mambast retry-failed --batch-id ").Append(E(info.BatchId))
              .Append(" --output ").Append(E(outputLocation)).Append("</code></p>");
        }

        sb.Append("</section>\n<section id=\"flagged\"><h2>Outputs that look broken</h2>");
        if (s.Flagged == 0)
        {
            sb.Append("<p>None: no output is nearly uniform or identical to its content.</p>");
        }
        else
        {
            sb.Append("<table><tr><th>job</th><th>input</th><th>problem</th><th>output</th></tr>");
            foreach (var f in s.FlaggedOutputs)
            {
                sb.Append("<tr class=\"flag\"><td><code>").Append(f.JobId).Append("</code></td><td>").Append(E(f.RelativePath ?? "")).Append("</td><td>").Append(E(f.Problem)).Append("</td><td>");
                if (f.OutputRef is { } outputRef) sb.Append("<a href=\"").Append(E(Link(outputRef))).Append("\">").Append(E(outputRef)).Append("</a>");
                sb.Append("</td></tr>");
            }

            sb.Append("</table>");
            if (s.Flagged > s.FlaggedOutputs.Count) sb.Append("<p class=\"note\">and ").Append((s.Flagged - s.FlaggedOutputs.Count).ToString(Inv)).Append(" more.</p>");
        }

        sb.Append("</section>\n<footer>mambast report &middot; ").Append(E(info.Queue)).Append("</footer></body></html>\n");
        return sb.ToString();
    }

    private static void AppendTile(StringBuilder sb, Tile t)
    {
        var job = t.Sampled.Job;
        var done = t.Sampled.Outcome.Status == JobStatus.Done;
        sb.Append("<figure class=\"tile ").Append(done ? "done" : "failed").Append("\" data-job=\"").Append(job.JobId).Append("\">");
        Img(sb, t.Content, "content", "content of " + job.RelativePath);
        sb.Append("<div class=\"style-thumb\" role=\"img\" aria-label=\"style\"></div>");
        if (done)
        {
            var outputRef = StorageLocation.RedactSecrets(t.Sampled.Outcome.OutputRef ?? job.OutputRef)!;
            sb.Append("<a href=\"").Append(E(Link(outputRef))).Append("\">");
            Img(sb, t.Output, "output", "output for " + job.RelativePath);
            sb.Append("</a>");
        }
        else
        {
            sb.Append("<div class=\"output missing\">").Append(E(t.Sampled.Outcome.ErrorCode?.ToString() ?? "failed")).Append("</div>");
        }

        sb.Append("<figcaption>").Append(E(job.RelativePath));
        if (t.Sampled.Outcome.Timings is { } timings && done && !t.Sampled.Outcome.Reused) sb.Append(" &middot; ").Append(Ms(timings.TotalMs));
        if (t.Sampled.Outcome.Reused) sb.Append(" &middot; reused");
        sb.Append("</figcaption></figure>");
    }

    private static void Img(StringBuilder sb, Thumbnail? thumb, string cls, string alt)
    {
        if (thumb is null)
        {
            sb.Append("<div class=\"").Append(cls).Append(" missing\">no preview</div>");
            return;
        }

        sb.Append("<img class=\"").Append(cls).Append("\" alt=\"").Append(E(alt)).Append("\" width=\"").Append(thumb.Width.ToString(Inv))
          .Append("\" height=\"").Append(thumb.Height.ToString(Inv)).Append("\" src=\"").Append(thumb.DataUri).Append("\">");
    }

    private static string ThroughputPlot(ReportSummary s, long? batchStart)
    {
        const int W = 560, H = 220, L = 48, B = 28, T = 12, R = 48;
        var svg = Svg("plot-throughput", "Completed jobs over time", W, H);
        if (s.CompletedPerSecond.Count == 0) return svg.Append(Empty(W, H)).Append("</svg></figure>").ToString();
        var first = Math.Min(batchStart ?? long.MaxValue, s.CompletedPerSecond.Keys.First());
        var last = s.CompletedPerSecond.Keys.Last();
        const int Bars = 60;
        var span = Math.Max(1, last - first + 1);
        var perBar = Math.Max(1, (long)Math.Ceiling(span / (double)Bars));
        var counts = new long[(int)Math.Ceiling(span / (double)perBar)];
        foreach (var (second, count) in s.CompletedPerSecond) counts[(second - first) / perBar] += count;
        var maxRate = counts.Max() / (double)perBar;
        var total = counts.Sum();
        var pw = W - L - R;
        var ph = H - T - B;
        var bw = pw / (double)counts.Length;
        long cumulative = 0;
        var line = new StringBuilder();
        for (var i = 0; i < counts.Length; i++)
        {
            var rate = counts[i] / (double)perBar;
            var h = maxRate > 0 ? rate / maxRate * ph : 0;
            svg.Append(CultureInfo.InvariantCulture, $"<rect class=\"bar\" x=\"{L + (i * bw):0.#}\" y=\"{T + ph - h:0.#}\" width=\"{Math.Max(1, bw - 1):0.#}\" height=\"{h:0.#}\"><title>{rate:0.##} jobs/s</title></rect>");
            cumulative += counts[i];
            line.Append(CultureInfo.InvariantCulture, $"{(i == 0 ? 'M' : 'L')}{L + ((i + 1) * bw):0.#},{T + ph - (cumulative / (double)total * ph):0.#}");
        }

        svg.Append("<path class=\"line\" d=\"").Append(line).Append("\"/>");
        Axes(svg, L, T, pw, ph);
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{L - 4}\" y=\"{T + 8}\" class=\"tick end\">{maxRate:0.##}/s</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{L + pw + 4}\" y=\"{T + 8}\" class=\"tick\">{total}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{L}\" y=\"{H - 8}\" class=\"tick\">0</text><text x=\"{L + pw}\" y=\"{H - 8}\" class=\"tick end\">{Duration(span)}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{L + (pw / 2)}\" y=\"{H - 8}\" class=\"tick mid\">bars: jobs/s; line: cumulative done</text>");
        return svg.Append("</svg></figure>").ToString();
    }

    private static string LatencyPlot(ReportSummary s)
    {
        const int W = 560, H = 220, L = 48, B = 28, T = 12, R = 16;
        var svg = Svg("plot-latency", "Per-job latency", W, H);
        var bars = s.Latency.Bars(30);
        if (bars.Count == 0) return svg.Append(Empty(W, H)).Append("</svg></figure>").ToString();
        var max = bars.Max(b => b.Count);
        var pw = W - L - R;
        var ph = H - T - B;
        var bw = pw / (double)bars.Count;
        for (var i = 0; i < bars.Count; i++)
        {
            var (low, high, count) = bars[i];
            var h = count / (double)max * ph;
            svg.Append(CultureInfo.InvariantCulture, $"<rect class=\"bar\" x=\"{L + (i * bw):0.#}\" y=\"{T + ph - h:0.#}\" width=\"{Math.Max(1, bw - 1):0.#}\" height=\"{h:0.#}\"><title>{Ms(low)}-{Ms(high)}: {count}</title></rect>");
        }

        Axes(svg, L, T, pw, ph);
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{L - 4}\" y=\"{T + 8}\" class=\"tick end\">{max}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{L}\" y=\"{H - 8}\" class=\"tick\">{Ms(bars[0].Low)}</text><text x=\"{L + pw}\" y=\"{H - 8}\" class=\"tick end\">{Ms(bars[^1].High)}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{L + (pw / 2)}\" y=\"{H - 8}\" class=\"tick mid\">p50 {Ms(s.Latency.Quantile(0.5))}, p95 {Ms(s.Latency.Quantile(0.95))} (log scale)</text>");
        return svg.Append("</svg></figure>").ToString();
    }

    private static string StagePlot(ReportSummary s)
    {
        const int W = 560, H = 220, L = 64, T = 12, R = 96, Row = 32;
        var svg = Svg("plot-stages", "p50 and p95 per stage", W, H);
        var max = s.Stages.Max(h => h.Quantile(0.95));
        if (s.Stages.All(h => h.Count == 0) || max <= 0) return svg.Append(Empty(W, H)).Append("</svg></figure>").ToString();
        var pw = W - L - R;
        for (var i = 0; i < s.Stages.Length; i++)
        {
            var p50 = s.Stages[i].Quantile(0.5);
            var p95 = s.Stages[i].Quantile(0.95);
            var y = T + (i * Row);
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{L - 6}\" y=\"{y + 16}\" class=\"tick end\">{ReportSummary.StageNames[i]}</text>");
            svg.Append(CultureInfo.InvariantCulture, $"<rect class=\"bar p95\" x=\"{L}\" y=\"{y + 4}\" width=\"{p95 / max * pw:0.#}\" height=\"20\"><title>p95 {Ms(p95)}</title></rect>");
            svg.Append(CultureInfo.InvariantCulture, $"<rect class=\"bar\" x=\"{L}\" y=\"{y + 8}\" width=\"{p50 / max * pw:0.#}\" height=\"12\"><title>p50 {Ms(p50)}</title></rect>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{L + (p95 / max * pw) + 4:0.#}\" y=\"{y + 18}\" class=\"tick\">{Ms(p50)} / {Ms(p95)}</text>");
        }

        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{L}\" y=\"{H - 6}\" class=\"tick\">inner bar p50, outer bar p95</text>");
        return svg.Append("</svg></figure>").ToString();
    }

    private static string WorkerPlot(ReportSummary s)
    {
        const int W = 560, H = 220, L = 150, T = 12, R = 56;
        var svg = Svg("plot-workers", "Jobs per worker", W, H);
        if (s.Workers.Count == 0) return svg.Append(Empty(W, H)).Append("</svg></figure>").ToString();
        var rows = s.Workers.OrderByDescending(w => w.Value).ToList();
        const int Shown = 8;
        if (rows.Count > Shown) rows = [.. rows.Take(Shown - 1), new KeyValuePair<string, long>($"{rows.Count - Shown + 1} others", rows.Skip(Shown - 1).Sum(w => w.Value))];
        var max = rows.Max(w => w.Value);
        var pw = W - L - R;
        var row = (H - T - 8) / (double)Shown;
        for (var i = 0; i < rows.Count; i++)
        {
            var y = T + (i * row);
            var w = rows[i].Value / (double)max * pw;
            var name = rows[i].Key.Length > 22 ? rows[i].Key[..21] + "…" : rows[i].Key;
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{L - 6}\" y=\"{y + (row / 2) + 4:0.#}\" class=\"tick end\">{E(name)}</text>");
            svg.Append(CultureInfo.InvariantCulture, $"<rect class=\"bar\" x=\"{L}\" y=\"{y + 3:0.#}\" width=\"{w:0.#}\" height=\"{row - 6:0.#}\"><title>{E(rows[i].Key)}: {rows[i].Value}</title></rect>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{L + w + 4:0.#}\" y=\"{y + (row / 2) + 4:0.#}\" class=\"tick\">{rows[i].Value}</text>");
        }

        return svg.Append("</svg></figure>").ToString();
    }

    private static StringBuilder Svg(string id, string title, int w, int h) =>
        new StringBuilder().Append(CultureInfo.InvariantCulture, $"<figure class=\"plot\"><figcaption>{E(title)}</figcaption><svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{E(title)}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">");

    private static string Empty(int w, int h) => $"<text x=\"{w / 2}\" y=\"{h / 2}\" class=\"tick mid\">no data</text>";

    private static void Axes(StringBuilder svg, int l, int t, int pw, int ph) =>
        svg.Append(CultureInfo.InvariantCulture, $"<path class=\"axis\" d=\"M{l},{t}V{t + ph}H{l + pw}\"/>");

    private static void Stat(StringBuilder sb, string id, string label, long value) => StatText(sb, id, label, value.ToString(Inv));

    private static void StatText(StringBuilder sb, string id, string label, string value) =>
        sb.Append("<div class=\"stat\"><dt>").Append(E(label)).Append("</dt><dd id=\"stat-").Append(id).Append("\">").Append(E(value)).Append("</dd></div>");

    private static string Link(string reference) =>
        ArchiveStores.IsBlob(reference) ? reference : new Uri(Path.GetFullPath(reference)).AbsoluteUri;

    private static string Ms(double ms) => ms >= 10_000 ? (ms / 1000).ToString("0", Inv) + " s" : ms >= 1000 ? (ms / 1000).ToString("0.0", Inv) + " s" : ms.ToString(ms >= 10 ? "0" : "0.#", Inv) + " ms";

    private static string Duration(double seconds) =>
        seconds >= 3600 ? $"{(int)(seconds / 3600)} h {(int)(seconds % 3600 / 60)} min" : seconds >= 60 ? $"{(int)(seconds / 60)} min {(int)(seconds % 60)} s" : seconds.ToString("0.0", Inv) + " s";

    private static string E(string text) => Html.Encode(text);

    private static string Jobs(long n) => n == 1 ? "1 job has" : $"{n} jobs have";

    /// <summary>The record that decides a job's status, without its payload: <see cref="BatchState.Merge"/>'s rule on
    /// (status, time, retried failure), and where the record sits in the event stream (-1: a retry's pending mark).</summary>
    private readonly record struct Winner(JobStatus Status, DateTimeOffset At, DateTimeOffset? RetryOf, long Ordinal);

    private static void Consider(Dictionary<Guid, Winner> winners, OutcomeRecord record, long ordinal)
    {
        if (!winners.TryGetValue(record.JobId, out var existing) || BatchState.Replaces(existing.Status, existing.At, existing.RetryOf, record))
        {
            winners[record.JobId] = new Winner(record.Status, record.At, record.RetryOf, ordinal);
        }
    }

    private sealed record Thumbnail(string DataUri, int Width, int Height, RgbFrame Frame);

    private sealed record Tile(SampledJob Sampled, Thumbnail? Content, Thumbnail? Output);

    private const string Css = """
        :root{--fg:#1d232a;--muted:#5b6773;--line:#d6dde4;--bg:#f6f8fa;--accent:#2f6fb0;--ok:#1f7a3d;--warn:#9a6700;--bad:#b42318}
        *{box-sizing:border-box}body{margin:0 auto;max-width:1240px;padding:24px;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:#fff}
        h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:16px;margin:14px 0 6px}
        code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:var(--bg);padding:1px 4px;border-radius:3px}
        .where,.note,footer{color:var(--muted);font-size:13px}.verdict{font-weight:600;padding:8px 12px;border-radius:6px;display:inline-block}
        .verdict.ok{background:#e7f5ec;color:var(--ok)}.verdict.warn{background:#fff4d6;color:var(--warn)}.verdict.bad{background:#fdecea;color:var(--bad)}
        .numbers{display:grid;grid-template-columns:repeat(auto-fill,minmax(130px,1fr));gap:10px;margin:0}
        .stat{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px 10px}.stat dt{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}.stat dd{margin:0;font-size:22px;font-weight:600}
        table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}.kv th{color:var(--muted);font-weight:500}
        .plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px}.plot{margin:0;border:1px solid var(--line);border-radius:6px;padding:8px}.plot figcaption{font-weight:600;margin-bottom:4px}
        svg{max-width:100%;height:auto}.bar{fill:var(--accent)}.bar.p95{fill:#a9c4e2}.line{fill:none;stroke:var(--ok);stroke-width:2}.axis{fill:none;stroke:var(--muted)}.tick{font-size:11px;fill:var(--muted)}.tick.end{text-anchor:end}.tick.mid{text-anchor:middle}
        .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
        .tile{margin:0;border:1px solid var(--line);border-radius:6px;padding:6px;display:grid;grid-template-columns:1fr 56px 1fr;gap:6px;align-items:center}
        .tile.failed{border-color:var(--bad)}.tile img{width:100%;height:auto;display:block;border-radius:3px}.tile figcaption{grid-column:1/4;font-size:12px;color:var(--muted);overflow-wrap:anywhere}
        .style-thumb{width:56px;height:56px;background-size:cover;background-position:center;border-radius:3px;background-color:var(--bg)}
        .missing{min-height:80px;display:flex;align-items:center;justify-content:center;background:var(--bg);color:var(--bad);font-size:12px;border-radius:3px}
        .failure-group{border-left:4px solid var(--bad);padding-left:10px;margin:10px 0}.count{color:var(--bad)}.message{font-family:ui-monospace,monospace;font-size:12px}
        """;
}

/// <summary>The HTML report with the project's image codec (libvips), as the CLI runs it.</summary>
public static class HtmlReports
{
    public static async Task<HtmlReportResult> WriteAsync(IArchiveStore output, string batchId, string outputFile, HtmlReportOptions options, CancellationToken cancellationToken)
    {
        var services = new ServiceCollection();
        services.AddImaging(new ConfigurationBuilder().AddEnvironmentVariables().Build());
        await using var provider = services.BuildServiceProvider();
        var codec = provider.GetRequiredService<IImageCodec>();
        return await new BatchHtmlReport(codec, options).WriteAsync(output, batchId, outputFile, cancellationToken);
    }
}
