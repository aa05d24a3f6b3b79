using MambaSt.Batch.ContractsGen;

// Usage: dotnet run --project tools/ContractsGen -- [repository root]   (make contracts)
var root = args.Length > 0 ? Path.GetFullPath(args[0]) : Directory.GetCurrentDirectory();
if (!File.Exists(Path.Combine(root, "MambaSt.Batch.sln")))
{
    Console.Error.WriteLine($"contracts: {root} is not the repository root (no MambaSt.Batch.sln); pass it as the first argument");
    return 2;
}

foreach (var path in ContractSchemas.Write(root)) Console.WriteLine(Path.GetRelativePath(root, path));
return 0;
