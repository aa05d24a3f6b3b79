using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Inference;

/// <summary>A failure of the inference engine with the outcome a job reports.</summary>
public sealed class InferenceException : Exception
{
    public InferenceException(StylizationErrorCode code, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Code = code;
    }

    public StylizationErrorCode Code { get; }
}
