namespace MambaSt.Batch.Storage.Tests;
