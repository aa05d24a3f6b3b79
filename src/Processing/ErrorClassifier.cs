using MambaSt.Batch.Contracts;
using MambaSt.Batch.Storage;

namespace MambaSt.Batch.Processing;

/// <summary>Maps any exception raised while processing a job to its error code and transience.</summary>
public static class ErrorClassifier
{
    public static JobFailedException Classify(Exception exception) => exception switch
    {
        JobFailedException known => known,
        AggregateException { InnerExceptions.Count: 1 } agg => Classify(agg.InnerExceptions[0]),
        StorageException storage => new(storage.ErrorCode, storage.IsTransient, storage.Message, storage),
        TimeoutException => new(StylizationErrorCode.Timeout, true, exception.Message, exception),
        // Not the job's token (the pipeline rethrows those): a client-side timeout, e.g. an HTTP read.
        OperationCanceledException => new(StylizationErrorCode.Timeout, true, $"timed out: {exception.Message}", exception),
        HttpRequestException or IOException => new(StylizationErrorCode.StorageUnavailable, true, exception.Message, exception),
        OutOfMemoryException => new(StylizationErrorCode.ModelError, true, "out of memory: " + exception.Message, exception),
        // Unknown faults get the bounded retry budget rather than a permanent verdict.
        _ => new(StylizationErrorCode.ModelError, true, $"{exception.GetType().Name}: {exception.Message}", exception),
    };
}
