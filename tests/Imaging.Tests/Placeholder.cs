namespace MambaSt.Batch.Imaging.Tests;
