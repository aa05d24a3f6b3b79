using MambaSt.Batch.Contracts;
using MambaSt.Batch.Testing;
using MassTransit;

namespace MambaSt.Batch.Messaging.Tests;

[Trait(TestTraits.Category, TestTraits.Integration)]
public class RabbitMqRoundTripTests(LocalServices services)
{
    [Fact]
    public async Task A_StylizeImage_sent_over_RabbitMQ_reaches_a_consumer_whose_event_comes_back()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        var ct = timeout.Token;
        var queue = $"roundtrip-{Guid.NewGuid():N}";
        var replies = new TaskCompletionSource<ImageStylized>(TaskCreationOptions.RunContinuationsAsynchronously);

        var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(services.RabbitMqUri);
            cfg.ReceiveEndpoint(queue, e =>
            {
                e.AutoDelete = true;
                e.Consumer(() => new FakeStylizer());
            });
            cfg.ReceiveEndpoint($"{queue}-events", e =>
            {
                e.AutoDelete = true;
                e.Handler<ImageStylized>(ctx =>
                {
                    replies.TrySetResult(ctx.Message);
                    return Task.CompletedTask;
                });
            });
        });

        await bus.StartAsync(ct);
        try
        {
            var endpoint = await bus.GetSendEndpoint(new Uri($"queue:{queue}?autodelete=true"));
            var jobId = Guid.NewGuid();
            await endpoint.Send(new StylizeImage
            {
                JobId = jobId,
                BatchId = "roundtrip",
                ContentRef = "az://in/a.jpg",
                StyleRef = "az://styles/s.jpg",
                OutputRef = "az://out/a.jpg",
                Options = new StylizeOptions { Seed = 7 },
            }, ct);

            var evt = await replies.Task.WaitAsync(ct);
            evt.JobId.ShouldBe(jobId);
            evt.OutputRef.ShouldBe("az://out/a.jpg");
            evt.WorkerId.ShouldBe(nameof(FakeStylizer));
        }
        finally
        {
            await bus.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>Stands in for the worker: this test is about the broker and serialization, not the model.</summary>
    private sealed class FakeStylizer : IConsumer<StylizeImage>
    {
        public Task Consume(ConsumeContext<StylizeImage> context) =>
            context.Publish(new ImageStylized
            {
                JobId = context.Message.JobId,
                BatchId = context.Message.BatchId,
                OutputRef = context.Message.OutputRef,
                Width = 1,
                Height = 1,
                OutputBytes = 1,
                Timings = new StageTimings(),
                ModelId = "none",
                ModelVersion = "0",
                WorkerId = nameof(FakeStylizer),
            });
    }
}
