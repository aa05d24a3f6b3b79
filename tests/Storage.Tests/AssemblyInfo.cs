using MambaSt.Batch.Testing;

[assembly: AssemblyFixture(typeof(LocalServices))]
