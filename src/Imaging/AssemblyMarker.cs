namespace MambaSt.Batch.Imaging;
internal static class AssemblyMarker;
