namespace MambaSt.Batch.Processing;
internal static class AssemblyMarker;
