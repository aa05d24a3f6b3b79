namespace MambaSt.Batch.Testing;

/// <summary>Locates the repository from a test's output folder.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string Fixtures => Path.Combine(Root, "tests", "fixtures");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MambaSt.Batch.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"MambaSt.Batch.sln not found above {AppContext.BaseDirectory}");
    }
}
