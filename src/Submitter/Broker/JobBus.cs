using MambaSt.Batch.Contracts;

using MassTransit;

namespace MambaSt.Batch.Submitter.Broker;

/// <summary>
/// A started MassTransit bus on RabbitMQ that sends StylizeImage to the worker's queue with publisher
/// confirms: a send completes only when the broker has taken the message. Dispose to stop the bus.
/// </summary>
public sealed class JobBus : IAsyncDisposable
{
    private readonly IBusControl _bus;
    private readonly ISendEndpoint _endpoint;

    private JobBus(IBusControl bus, ISendEndpoint endpoint)
    {
        _bus = bus;
        _endpoint = endpoint;
    }

    public static async Task<JobBus> StartAsync(BrokerSettings broker, CancellationToken cancellationToken)
    {
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(BatchTopology.ToMassTransit(broker.Url), h =>
            {
                h.PublisherConfirmation = true;
                h.RequestedConnectionTimeout(TimeSpan.FromSeconds(10));
            });
        });
        using var startTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        startTimeout.CancelAfter(TimeSpan.FromSeconds(30));
        try
        {
            await bus.StartAsync(startTimeout.Token);
            // Not a "queue:" address: that would declare the job queue as a classic queue, which the workers'
            // quorum queue refuses (PRECONDITION_FAILED). The queue is ensured once, then its exchange is used.
            await using (var connection = await BatchTopology.ConnectAsync(broker, startTimeout.Token))
            {
                await Processing.QueueTopology.EnsureJobQueueAsync(connection, broker.Queue, startTimeout.Token);
            }

            var endpoint = await bus.GetSendEndpoint(new Uri($"exchange:{broker.Queue}"));
            return new JobBus(bus, endpoint);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            await bus.StopAsync(CancellationToken.None);
            throw new UnreachableException($"RabbitMQ at {broker.Display} is unreachable: {ex.GetBaseException().Message}", ex);
        }
    }

    /// <summary>Sends; completes when the broker confirmed the message.</summary>
    public Task SendAsync(StylizeImage job, CancellationToken cancellationToken) =>
        _endpoint.Send(job, ctx => ctx.Durable = true, cancellationToken);

    /// <summary>
    /// Sends every job with at most <paramref name="maxInFlight"/> unconfirmed at a time and reports each
    /// confirmed one. Stops starting new sends on cancellation; sends already started are awaited.
    /// </summary>
    public async Task<int> SendAllAsync(IEnumerable<StylizeImage> jobs, int maxInFlight, Action<StylizeImage> confirmed, CancellationToken cancellationToken)
    {
        using var slots = new SemaphoreSlim(maxInFlight, maxInFlight);
        var inFlight = new List<Task>();
        var count = 0;
        Exception? failure = null;
        foreach (var job in jobs)
        {
            if (cancellationToken.IsCancellationRequested || Volatile.Read(ref failure) is not null) break;
            try
            {
                await slots.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            inFlight.Add(SendOneAsync(job));
            if (inFlight.Count >= maxInFlight * 4) inFlight.RemoveAll(t => t.IsCompleted);
        }

        await Task.WhenAll(inFlight);
        if (failure is not null) throw new UnreachableException($"RabbitMQ did not accept a message: {failure.GetBaseException().Message}", failure);
        cancellationToken.ThrowIfCancellationRequested();
        return count;

        async Task SendOneAsync(StylizeImage job)
        {
            try
            {
                await _endpoint.Send(job, ctx => ctx.Durable = true, CancellationToken.None);
                Interlocked.Increment(ref count);
                confirmed(job);
            }
            catch (Exception ex)
            {
                Interlocked.CompareExchange(ref failure, ex, null);
            }
            finally
            {
                slots.Release();
            }
        }
    }

    public async ValueTask DisposeAsync() => await _bus.StopAsync(CancellationToken.None);
}
