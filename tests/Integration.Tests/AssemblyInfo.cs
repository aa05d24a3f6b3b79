using MambaSt.Batch.Testing;

[assembly: AssemblyFixture(typeof(LocalServices))]
[assembly: CollectionBehavior(DisableTestParallelization = true)]
