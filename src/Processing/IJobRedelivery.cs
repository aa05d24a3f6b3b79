using MambaSt.Batch.Contracts;
using MassTransit;

namespace MambaSt.Batch.Processing;

/// <summary>Sends a job that failed transiently back to its queue after a delay, and parks jobs whose
/// redeliveries are spent in the error queue.</summary>
public interface IJobRedelivery
{
    /// <summary>Redeliveries this message has had so far.</summary>
    int AttemptOf(ConsumeContext<StylizeImage> context);

    /// <summary>Schedules the next redelivery; false when none is left.</summary>
    Task<bool> TryRedeliverAsync(ConsumeContext<StylizeImage> context, JobFailedException failure, CancellationToken cancellationToken);

    /// <summary>Keeps the message for people to inspect (the queue's _error queue).</summary>
    Task MoveToErrorQueueAsync(ConsumeContext<StylizeImage> context, JobFailedException failure, CancellationToken cancellationToken);

    /// <summary>Moves a message the broker redelivered (a worker stopped while holding it) to the isolation queue,
    /// where it runs alone; false when it was not redelivered or this transport has no isolation queue.</summary>
    Task<bool> TryIsolateAsync(ConsumeContext<StylizeImage> context, CancellationToken cancellationToken) => Task.FromResult(false);
}

/// <summary>For the in-process transport: no redelivery, no error queue; failures end at once.</summary>
public sealed class NoRedelivery : IJobRedelivery
{
    public int AttemptOf(ConsumeContext<StylizeImage> context) => 0;

    public Task<bool> TryRedeliverAsync(ConsumeContext<StylizeImage> context, JobFailedException failure, CancellationToken cancellationToken) =>
        Task.FromResult(false);

    public Task MoveToErrorQueueAsync(ConsumeContext<StylizeImage> context, JobFailedException failure, CancellationToken cancellationToken) =>
        Task.CompletedTask;
}
