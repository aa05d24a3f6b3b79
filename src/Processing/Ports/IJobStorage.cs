namespace MambaSt.Batch.Processing.Ports;

/// <summary>What the pipeline needs from storage, addressed by the locations carried in messages.</summary>
public interface IJobStorage
{
    /// <summary>Reads a whole input (content or style) up to <paramref name="maxBytes"/>.</summary>
    Task<ReadOnlyMemory<byte>> ReadAsync(string location, long maxBytes, CancellationToken cancellationToken);

    /// <summary>The output's size and metadata if it exists, else null.</summary>
    Task<StoredOutput?> FindOutputAsync(string location, CancellationToken cancellationToken);

    /// <summary>Writes the output only if absent; false when something is already there.</summary>
    Task<bool> WriteOutputIfAbsentAsync(string location, ReadOnlyMemory<byte> data, string contentType,
        IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken);
}

public sealed record StoredOutput(long Size, IReadOnlyDictionary<string, string> Metadata);
