using System.Diagnostics;
using System.Text.RegularExpressions;

using MambaSt.Batch.Contracts;
using MambaSt.Batch.Imaging;
using MambaSt.Batch.Submitter.Batches;
using MambaSt.Batch.Submitter.Storage;
using MambaSt.Batch.Testing;

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MambaSt.Batch.Submitter.Tests;

public class HtmlReportSummaryTests
{
    [Fact]
    public void Log_histogram_quantiles_are_within_its_bucket_resolution()
    {
        var h = new LogHistogram();
        for (var i = 1; i <= 1000; i++) h.Add(i);
        h.Quantile(0.5).ShouldBe(500, 500 * 0.06);
        h.Quantile(0.95).ShouldBe(950, 950 * 0.06);
        h.Count.ShouldBe(1000);
        h.Bars(30).Sum(b => b.Count).ShouldBe(1000);
    }

    [Fact]
    public void The_sample_is_bounded_and_the_same_whatever_the_order_of_the_records()
    {
        var jobs = Enumerable.Range(0, 1000).Select(i => Job(i)).ToList();
        var forward = new ReportSummary(new HtmlReportOptions());
        var backward = new ReportSummary(new HtmlReportOptions());
        foreach (var j in jobs) forward.Add(j, Done(j));
        foreach (var j in Enumerable.Reverse(jobs)) backward.Add(j, Done(j));

        forward.Sample().Count.ShouldBe(48);
        forward.Sample().Select(s => s.Job.JobId).ShouldBe(backward.Sample().Select(s => s.Job.JobId));
        forward.Done.ShouldBe(1000);
    }

    [Fact]
    public void Failures_are_grouped_by_code_with_bounded_examples_and_redacted_messages()
    {
        var summary = new ReportSummary(new HtmlReportOptions { FailuresPerGroup = 3 });
        for (var i = 0; i < 10; i++)
        {
            var job = Job(i);
            summary.Add(job, new OutcomeRecord
            {
                JobId = job.JobId, Status = JobStatus.Failed, ErrorCode = i < 7 ? StylizationErrorCode.InvalidImage : StylizationErrorCode.NotFound,
                Message = "cannot read https://acct.blob.core.windows.net/c/x.jpg?sv=2024&sig=SECRETSIG",
            });
        }

        summary.Failed.ShouldBe(10);
        summary.FailureGroups.Keys.ShouldBe(["InvalidImage", "NotFound"]);
        summary.FailureGroups["InvalidImage"].Count.ShouldBe(7);
        summary.FailureGroups["InvalidImage"].Examples.Count.ShouldBe(3);
        summary.FailureGroups["InvalidImage"].FirstMessage.ShouldNotContain("SECRETSIG");
    }

    [Fact]
    public void Uniform_and_unchanged_outputs_are_flagged_and_healthy_ones_are_not()
    {
        var summary = new ReportSummary(new HtmlReportOptions());
        var (uniform, unchanged, healthy) = (Job(1), Job(2), Job(3));
        summary.Add(uniform, Done(uniform) with { Quality = new OutputQuality { LumaStdDev = 0.4, ContentDifference = 80 } });
        summary.Add(unchanged, Done(unchanged) with { Quality = new OutputQuality { LumaStdDev = 50, ContentDifference = 0 } });
        summary.Add(healthy, Done(healthy) with { Quality = new OutputQuality { LumaStdDev = 50, ContentDifference = 40 } });

        summary.Flagged.ShouldBe(2);
        summary.FlaggedOutputs.Select(f => f.JobId).ShouldBe([uniform.JobId, unchanged.JobId]);
        summary.FlaggedOutputs[0].Problem.ShouldContain("uniform");
        summary.FlaggedOutputs[1].Problem.ShouldContain("same as the content");
    }

    internal static JobRecord Job(int i, string? contentRef = null, string? outputRef = null) => new()
    {
        JobId = new Guid(i, 0, 0, new byte[8]), RelativePath = $"img{i}.png", ContentRef = contentRef ?? $"/in/img{i}.png",
        OutputRef = outputRef ?? $"/out/img{i}.png", OutputPath = $"img{i}.png",
    };

    internal static OutcomeRecord Done(JobRecord job) => new()
    {
        JobId = job.JobId, Status = JobStatus.Done, OutputRef = job.OutputRef, WorkerId = "w" + (job.JobId.GetHashCode() & 3), ModelId = "mambast-small", ModelVersion = "0.5.0",
        Timings = new StageTimings { FetchMs = 5, DecodeMs = 8, StyleEncodeMs = 1, InferenceMs = 400, EncodeMs = 9, WriteMs = 12, TotalMs = 440 },
        At = DateTimeOffset.UnixEpoch.AddHours(1).AddSeconds(job.JobId.GetHashCode() & 1023),
    };
}

/// <summary>The page built from real records, real images (libvips) and, for the browser test, headless Chromium.</summary>
public class HtmlReportPageTests
{
    [Fact]
    public async Task A_batch_of_thousands_of_jobs_gives_a_page_under_10_MB_with_the_default_sample()
    {
        using var dir = new TempDir();
        for (var i = 0; i < 20; i++) Images.WritePng(dir.Path($"images/c{i}.png"), 1024, 768, i);
        Images.WritePng(dir.Path("style.png"), 512, 512, 999);
        var output = new LocalArchiveStore(dir.Path("out"));
        const string BatchId = "big-batch";
        var jobs = Enumerable.Range(0, 5000).Select(i => HtmlReportSummaryTests.Job(i, dir.Path($"images/c{i % 20}.png"), dir.Path($"images/c{(i + 1) % 20}.png"))).ToList();
        await WriteRecordsAsync(output, BatchId, dir.Path("style.png"), jobs, jobs.Select(HtmlReportSummaryTests.Done));

        var file = dir.Path("report.html");
        var result = await HtmlReports.WriteAsync(output, BatchId, file, new HtmlReportOptions(), TestContext.Current.CancellationToken);

        result.Jobs.ShouldBe(5000);
        result.Thumbnails.ShouldBe(48);
        new FileInfo(file).Length.ShouldBeLessThan(10L << 20);
        var html = await File.ReadAllTextAsync(file, TestContext.Current.CancellationToken);
        Regex.Count(html, "<figure class=\"tile ").ShouldBe(48);
        html.ShouldNotContain("src=\"http");
        html.ShouldNotContain("<script");
    }

    [Fact]
    public async Task An_output_from_an_older_worker_that_is_one_flat_colour_is_flagged_from_its_thumbnail()
    {
        using var dir = new TempDir();
        Images.WritePng(dir.Path("in/a.png"), 96, 96, 1);
        Images.WritePng(dir.Path("style.png"), 64, 64, 2);
        Directory.CreateDirectory(dir.Path("out"));
        await File.WriteAllBytesAsync(dir.Path("out/a.png"), FlatPng(96, 96), TestContext.Current.CancellationToken);
        var output = new LocalArchiveStore(dir.Path("out"));
        var job = HtmlReportSummaryTests.Job(1, dir.Path("in/a.png"), dir.Path("out/a.png"));
        await WriteRecordsAsync(output, "flat", dir.Path("style.png"), [job], [HtmlReportSummaryTests.Done(job)]);

        await HtmlReports.WriteAsync(output, "flat", dir.Path("r.html"), new HtmlReportOptions(), TestContext.Current.CancellationToken);

        var html = await File.ReadAllTextAsync(dir.Path("r.html"), TestContext.Current.CancellationToken);
        html.ShouldContain("<tr class=\"flag\">");
        html.ShouldContain("nearly uniform");
        html.ShouldContain("id=\"stat-flagged\">1<");
    }

    [Fact]
    public async Task A_real_12_job_batch_renders_in_headless_chromium_with_its_numbers_thumbnails_failure_and_plots()
    {
        using var dir = TempDir.WithImages(11, size: 64);
        await File.WriteAllBytesAsync(dir.Path("in/corrupt.png"), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3, 4, 5], TestContext.Current.CancellationToken);
        Environment.SetEnvironmentVariable("Inference__ModelDirectory", Path.Combine(RepoPaths.Fixtures, "golden", "tiny-sequential"));
        var report = dir.Path("report.html");
        var (exit, stdout, _) = await CliRunner.RunAsync("stylize", dir.Path("in"), "--style", dir.Path("style.png"), "--out", dir.Path("out"), "--format", "png", "--max-side", "64", "--report", report);
        exit.ShouldBe(1, stdout); // one job failed
        stdout.ShouldContain("report: " + report);

        var chromium = Chromium();
        var dom = await RunAsync(chromium, $"--headless --no-sandbox --disable-gpu --hide-scrollbars --dump-dom file://{report}");
        var shot = dir.Path("shot.png");
        var screenshot = await RunAsync(chromium, $"--headless --no-sandbox --disable-gpu --hide-scrollbars --enable-logging=stderr --v=0 --window-size=1280,2400 --screenshot={shot} file://{report}");

        dom.Out.ShouldContain("id=\"stat-jobs\">12<");
        dom.Out.ShouldContain("id=\"stat-done\">11<");
        dom.Out.ShouldContain("id=\"stat-failed\">1<");
        dom.Out.ShouldContain("id=\"stat-pending\">0<");
        Regex.Count(dom.Out, "<figure class=\"tile ").ShouldBe(12);
        Regex.Count(dom.Out, "<img class=\"output\"").ShouldBe(11);
        Regex.Count(dom.Out, "class=\"failure-group\"").ShouldBe(1);
        dom.Out.ShouldContain("data-code=\"InvalidImage\"");
        dom.Out.ShouldContain("mambast retry-failed --batch-id");
        foreach (var plot in new[] { "plot-throughput", "plot-latency", "plot-stages", "plot-workers" })
        {
            Regex.IsMatch(dom.Out, $"<svg id=\"{plot}\"[^>]*>.*?<rect class=\"bar", RegexOptions.Singleline).ShouldBeTrue(plot);
        }

        (screenshot.Out + screenshot.Error).ShouldNotContain("Uncaught");
        (screenshot.Out + screenshot.Error).ShouldNotContain("ERROR:CONSOLE");
        LumaStdDev(await File.ReadAllBytesAsync(shot, TestContext.Current.CancellationToken)).ShouldBeGreaterThan(20);
    }

    private static string Chromium() =>
        new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("Chromium is not installed: run scripts/setup.sh (apt package chromium)");

    private static async Task<(string Out, string Error)> RunAsync(string exe, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(exe, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        process.ExitCode.ShouldBe(0, await stderr);
        return (await stdout, await stderr);
    }

    private static double LumaStdDev(byte[] png)
    {
        var services = new ServiceCollection();
        services.AddImaging(new ConfigurationBuilder().Build());
        using var provider = services.BuildServiceProvider();
        var image = provider.GetRequiredService<IImageCodec>().Decode(png);
        var frame = new Processing.Ports.RgbFrame(image.Pixels, image.Width, image.Height);
        return Processing.OutputQualityMeter.Measure(frame, frame).LumaStdDev;
    }

    private static byte[] FlatPng(int width, int height)
    {
        var services = new ServiceCollection();
        services.AddImaging(new ConfigurationBuilder().Build());
        using var provider = services.BuildServiceProvider();
        var pixels = Enumerable.Repeat((byte)128, width * height * 3).ToArray();
        return provider.GetRequiredService<IImageCodec>().Encode(new RgbImage(width, height, pixels), new EncodeOptions { Format = OutputFormat.Png });
    }

    private static async Task WriteRecordsAsync(LocalArchiveStore output, string batchId, string styleRef, IReadOnlyList<JobRecord> jobs, IEnumerable<OutcomeRecord> outcomes)
    {
        var info = new BatchInfo { BatchId = batchId, Source = "/in", Output = output.Root, StyleRef = styleRef, Options = new StylizeOptions(), Queue = "stylize-image", CreatedAt = DateTimeOffset.UnixEpoch.AddHours(1) };
        var ct = TestContext.Current.CancellationToken;
        await output.WriteTextAsync(BatchPaths.Batch(batchId), System.Text.Json.JsonSerializer.Serialize(info, JsonLines.Options), ct);
        await output.WriteTextAsync(BatchPaths.Jobs(batchId), JsonLines.Write(jobs), ct);
        await output.WriteTextAsync(BatchPaths.Events(batchId, "run1"), JsonLines.Write(outcomes), ct);
    }
}
