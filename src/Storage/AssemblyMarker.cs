namespace MambaSt.Batch.Storage;
internal static class AssemblyMarker;
