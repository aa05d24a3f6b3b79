namespace MambaSt.Batch.Submitter;

/// <summary>The process exit codes of <c>mambast</c>.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    public const int JobsFailed = 1;
    public const int UsageError = 2;
    public const int Unreachable = 3;
    public const int Canceled = 130;
}

/// <summary>A failure explained to a person: its message is printed as is and the process exits with <see cref="ExitCode"/>.</summary>
public class CliException(int exitCode, string message, Exception? inner = null) : Exception(message, inner)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>Bad arguments or settings (exit 2).</summary>
public sealed class UsageException(string message) : CliException(ExitCodes.UsageError, message);

/// <summary>The broker or storage cannot be reached (exit 3).</summary>
public sealed class UnreachableException(string message, Exception? inner = null) : CliException(ExitCodes.Unreachable, message, inner);
