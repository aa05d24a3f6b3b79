using MambaSt.Batch.Contracts;
using MambaSt.Batch.Processing;
using MambaSt.Batch.Testing;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MambaSt.Batch.Worker.Tests;

/// <summary>Crash loops end in quarantine; classic queues from before are named at start, and migrate.</summary>
[Trait(TestTraits.Category, TestTraits.Chaos)]
public class WorkerQuarantineTests(LocalServices services)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_job_that_kills_every_worker_that_takes_it_is_quarantined_alone_and_its_batch_mates_finish()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var h = new PipelineHarness(services);
        await h.StartListeningAsync(ct);
        var jobs = await h.UploadJobsAsync(3, 64, 48, ct);
        await h.UploadAsync("in/poison-crash.jpg", h.MakeJpeg(99), ct);
        var poison = h.Job("in/poison-crash.jpg");
        var settings = h.WorkerSettings(new()
        {
            ["Worker__CrashOnContentMarker"] = "poison-crash",
            ["Worker__DeliveryLimit"] = "1",
            // The poison and its three batch mates are taken in one delivery batch: the crash returns all four.
            ["Worker__BatchMessageLimit"] = "4",
            ["Worker__BatchTimeLimitMs"] = "1500",
            ["Worker__PrefetchCount"] = "4",
        });
        // Each worker that takes the poison dies with it (SIGKILL), as on a decoder segfault; start the next.
        var worker = WorkerProcess.Start(settings);
        var starts = 1;
        var log = "";
        try
        {
            await h.SendAsync([poison, .. jobs], ct);
            var deadline = DateTime.UtcNow + Patience;
            while (true)
            {
                while (!worker.HasExited && h.DistinctOutcomes < 4 && DateTime.UtcNow < deadline) await Task.Delay(100, ct);
                log += $"--- worker {starts}\n{worker.Log}";
                // Bounded: a broker that never quarantined would have workers started forever.
                if (!worker.HasExited || starts >= 8) break;
                await worker.DisposeAsync();
                worker = WorkerProcess.Start(settings);
                starts++;
            }
        }
        finally
        {
            await worker.DisposeAsync();
        }

        await Task.Delay(1500, ct);
        h.DistinctOutcomes.ShouldBe(4, log);
        var quarantined = h.Failed.ShouldHaveSingleItem(log);
        quarantined.JobId.ShouldBe(poison.JobId);
        quarantined.ErrorCode.ShouldBe(StylizationErrorCode.Quarantined);
        quarantined.AttemptCount.ShouldBe(2);
        quarantined.Transient.ShouldBeFalse();
        h.Completed.Select(c => c.JobId).Order().ShouldBe(jobs.Select(j => j.JobId).Order(), "the batch mates ran alone after the first crash, none was quarantined");
        starts.ShouldBe(4, "the poison killed the worker in its batch, then twice alone in the isolation queue; the fourth worker quarantined it");
        log.ShouldContain("moved to " + h.QueueName + "_isolation");
    }

    [Fact]
    public async Task A_quarantined_job_whose_output_a_killed_delivery_wrote_is_answered_done_not_quarantined()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var h = new PipelineHarness(services);
        await h.StartListeningAsync(ct);
        var jobs = await h.UploadJobsAsync(2, 64, 48, ct);
        var (written, neverRun) = (jobs[0], jobs[1]);
        await using var worker = WorkerProcess.Start(h.WorkerSettings());
        await h.SendAsync([written], ct);
        await h.WaitForOutcomesAsync(1, Patience, () => worker.Log, ct);
        h.Completed.ShouldHaveSingleItem().Reused.ShouldBeFalse();

        // What the job queue dead-letters when the worker was killed after the write and before the event, each time.
        await h.SendAsync([written, neverRun], ct, exchange: h.QueueName + "_quarantine");
        var deadline = DateTime.UtcNow + Patience;
        while ((h.Completed.Count < 2 || h.Failed.IsEmpty) && DateTime.UtcNow < deadline) await Task.Delay(100, ct);

        h.Completed.Count.ShouldBe(2, worker.Log);
        var answered = h.Completed.Last();
        answered.JobId.ShouldBe(written.JobId);
        answered.Reused.ShouldBeTrue();
        answered.Width.ShouldBeGreaterThan(0);
        var quarantined = h.Failed.ShouldHaveSingleItem(worker.Log);
        quarantined.JobId.ShouldBe(neverRun.JobId);
        quarantined.ErrorCode.ShouldBe(StylizationErrorCode.Quarantined);
    }

    [Fact]
    public async Task A_classic_job_queue_from_before_stops_a_quorum_worker_with_the_migration_step_and_migrates_after_draining()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var h = new PipelineHarness(services);
        await h.StartListeningAsync(ct);
        var jobs = await h.UploadJobsAsync(2, 64, 48, ct);
        var factory = new ConnectionFactory { Uri = services.RabbitMqUri };
        await using var connection = await factory.CreateConnectionAsync(ct);
        await using (var old = await connection.CreateChannelAsync(cancellationToken: ct))
        {
            // What the worker declared before quorum queues became the default.
            await old.QueueDeclareAsync(h.QueueName, durable: true, exclusive: false, autoDelete: false, cancellationToken: ct);
            await old.QueueDeclareAsync($"{h.QueueName}_error", durable: true, exclusive: false, autoDelete: false, cancellationToken: ct);
        }

        await using (var refused = WorkerProcess.Start(h.WorkerSettings()))
        {
            (await refused.WaitForExitAsync(TimeSpan.FromSeconds(90))).ShouldNotBe(0);
            refused.Log.ShouldContain("PRECONDITION_FAILED");
            refused.Log.ShouldContain("Worker:QueueType=Classic");
            refused.Log.ShouldContain("Migrating from classic queues");
        }

        // Step 1 of the migration: drain the old queues with the old queue type.
        await using (var classic = WorkerProcess.Start(h.WorkerSettings(new() { ["Worker__QueueType"] = "Classic", ["Worker__ParkedMessageTtlHours"] = "0" })))
        {
            await classic.WaitForLogAsync("declared as Classic", Patience, ct);
            await h.SendAsync([jobs[0]], ct);
            await h.WaitForOutcomesAsync(1, Patience, () => classic.Log, ct);
            classic.Terminate();
            (await classic.WaitForExitAsync(TimeSpan.FromSeconds(60))).ShouldBe(0, classic.Log);
        }

        // Step 2: delete the drained queues; the next worker declares quorum ones.
        await using (var admin = await connection.CreateChannelAsync(cancellationToken: ct))
        {
            (await admin.QueueDeleteAsync(h.QueueName, ifUnused: false, ifEmpty: true, cancellationToken: ct)).ShouldBe(0u);
            foreach (var q in new[] { "_error", "_quarantine", "_quarantine_error", "_isolation", "_isolation_error", "-delay-1s" })
            {
                await admin.QueueDeleteAsync(h.QueueName + q, ifUnused: false, ifEmpty: true, cancellationToken: ct);
            }
        }

        await using (var quorum = WorkerProcess.Start(h.WorkerSettings()))
        {
            await quorum.WaitForLogAsync("declared as Quorum", Patience, ct);
            await h.SendAsync([jobs[1]], ct);
            await h.WaitForOutcomesAsync(2, Patience, () => quorum.Log, ct);
        }

        h.Completed.Select(c => c.JobId).Order().ShouldBe(jobs.Select(j => j.JobId).Order());
        await using var probe = await connection.CreateChannelAsync(cancellationToken: ct);
        var asClassic = await Should.ThrowAsync<OperationInterruptedException>(() =>
            probe.QueueDeclareAsync(h.QueueName, durable: true, exclusive: false, autoDelete: false, cancellationToken: ct));
        asClassic.ShutdownReason!.ReplyText.ShouldContain("inequivalent arg");
    }
}
