using MambaSt.Batch.Contracts;
using MambaSt.Batch.Processing.Ports;
using MambaSt.Batch.Storage;

namespace MambaSt.Batch.Processing.Adapters;

/// <summary>The pipeline's storage over <see cref="IStorageResolver"/>: message locations to stores and names.</summary>
internal sealed class StorageJobStorage(IStorageResolver resolver) : IJobStorage
{
    public async Task<ReadOnlyMemory<byte>> ReadAsync(string location, long maxBytes, CancellationToken cancellationToken)
    {
        var (store, name) = Resolve(location);
        try
        {
            await using var stream = await store.OpenReadAsync(name, cancellationToken);
            using var buffer = new MemoryStream();
            var chunk = new byte[81920];
            int read;
            while ((read = await stream.ReadAsync(chunk, cancellationToken)) > 0)
            {
                if (buffer.Length + read > maxBytes)
                {
                    throw new JobFailedException(StylizationErrorCode.ImageTooLarge, false,
                        $"{location} is larger than Worker:MaxInputBytes={maxBytes}");
                }

                buffer.Write(chunk, 0, read);
            }

            return buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        }
        catch (StorageException e)
        {
            throw Map(e, location);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            // The storage client gave up (e.g. its network read timeout), not the job: this job only.
            throw new JobFailedException(StylizationErrorCode.Timeout, true, $"reading {location} timed out: {e.Message}", e);
        }
    }

    public async Task<StoredOutput?> FindOutputAsync(string location, CancellationToken cancellationToken)
    {
        var (store, name) = Resolve(location);
        try
        {
            var properties = await store.GetPropertiesAsync(name, cancellationToken);
            return new StoredOutput(properties.Length, properties.Metadata);
        }
        catch (StorageException e) when (e.Kind == StorageErrorKind.NotFound)
        {
            return null;
        }
        catch (StorageException e)
        {
            throw Map(e, location);
        }
    }

    public async Task<bool> WriteOutputIfAbsentAsync(string location, ReadOnlyMemory<byte> data, string contentType,
        IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken)
    {
        var (store, name) = Resolve(location);
        var options = new BlobWriteOptions { ContentType = contentType, Metadata = metadata, IfAbsent = true };
        try
        {
            try
            {
                await PutAsync(store, name, data, options, cancellationToken);
            }
            catch (StorageException e) when (e.Kind == StorageErrorKind.NotFound)
            {
                // The container is missing: create it once, then write. A refusal to create it
                // (e.g. a SAS without create permission) is mapped below like any storage error.
                await store.CreateContainerIfMissingAsync(cancellationToken);
                await PutAsync(store, name, data, options, cancellationToken);
            }

            return true;
        }
        catch (StorageException e) when (e.Kind == StorageErrorKind.AlreadyExists)
        {
            return false;
        }
        catch (StorageException e)
        {
            throw Map(e, location);
        }
    }

    private static async Task PutAsync(IBlobStore store, string name, ReadOnlyMemory<byte> data, BlobWriteOptions options, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream(data.ToArray(), writable: false);
        await store.PutAsync(name, content, options, cancellationToken);
    }

    private (IBlobStore Store, string Name) Resolve(string location)
    {
        try
        {
            var resolved = resolver.Resolve(location);
            return (resolved.Store, resolved.Name);
        }
        catch (StorageException e)
        {
            throw Map(e, location);
        }
        catch (FormatException e)
        {
            throw new JobFailedException(StylizationErrorCode.NotFound, false, $"not a storage location: {e.Message}", e);
        }
        catch (ArgumentException e)
        {
            throw new JobFailedException(StylizationErrorCode.NotFound, false, $"not a storage location: {e.Message}", e);
        }
    }

    private static JobFailedException Map(StorageException e, string location) =>
        new(e.ErrorCode, e.IsTransient, e.Message, e);
}
