namespace MambaSt.Batch.Inference.Tests;
