using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Processing;

/// <summary>Maps any exception raised while processing a job to its error code and transience.</summary>
public static class ErrorClassifier
{
    public static JobFailedException Classify(Exception exception) => exception switch
    {
        JobFailedException known => known,
        AggregateException { InnerExceptions.Count: 1 } agg => Classify(agg.InnerExceptions[0]),
        TimeoutException => new(StylizationErrorCode.Timeout, true, exception.Message, exception),
        HttpRequestException or IOException => new(StylizationErrorCode.StorageUnavailable, true, exception.Message, exception),
        OutOfMemoryException => new(StylizationErrorCode.ModelError, true, "out of memory: " + exception.Message, exception),
        // Unknown faults get the bounded retry budget rather than a permanent verdict.
        _ => new(StylizationErrorCode.ModelError, true, $"{exception.GetType().Name}: {exception.Message}", exception),
    };
}
