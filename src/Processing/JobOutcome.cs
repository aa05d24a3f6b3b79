using MambaSt.Batch.Contracts;

namespace MambaSt.Batch.Processing;

/// <summary>What happened to one job of a batch: exactly one of Completed or Failure is set.</summary>
public sealed record JobOutcome(StylizeImage Job, ImageStylized? Completed, JobFailedException? Failure)
{
    public static JobOutcome Success(StylizeImage job, ImageStylized evt) => new(job, evt, null);

    public static JobOutcome Failed(StylizeImage job, JobFailedException failure) => new(job, null, failure);
}
