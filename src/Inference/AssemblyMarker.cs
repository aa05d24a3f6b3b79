namespace MambaSt.Batch.Inference;
internal static class AssemblyMarker;
