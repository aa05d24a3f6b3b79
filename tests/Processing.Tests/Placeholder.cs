namespace MambaSt.Batch.Processing.Tests;
