using Microsoft.Extensions.Options;

namespace MambaSt.Batch.Processing;

/// <summary>
/// The bytes of recently used style images, by location, so a batch of an archive run (one style, thousands
/// of batches) does not fetch its style again each time. Bounded by Worker:StyleCacheBytes (least recently
/// used first out); 0 turns it off. A style is read as it is at first use: replacing a style blob in place
/// during a run is not seen until it leaves the cache. Thread-safe; one per process.
/// </summary>
public sealed class StyleBytesCache(IOptions<WorkerOptions> options)
{
    private readonly long _capacity = options.Value.StyleCacheBytes;
    private readonly LinkedList<(string Location, ReadOnlyMemory<byte> Bytes)> _order = new();
    private readonly Dictionary<string, LinkedListNode<(string Location, ReadOnlyMemory<byte> Bytes)>> _index = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private long _size;

    public long SizeBytes
    {
        get
        {
            lock (_gate) return _size;
        }
    }

    public bool TryGet(string location, out ReadOnlyMemory<byte> bytes)
    {
        lock (_gate)
        {
            if (_index.TryGetValue(location, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                bytes = node.Value.Bytes;
                return true;
            }
        }

        bytes = default;
        return false;
    }

    public void Add(string location, ReadOnlyMemory<byte> bytes)
    {
        if (bytes.Length > _capacity) return;
        lock (_gate)
        {
            if (_index.ContainsKey(location)) return;
            _index[location] = _order.AddFirst((location, bytes));
            _size += bytes.Length;
            while (_size > _capacity && _order.Last is { } last)
            {
                _order.RemoveLast();
                _index.Remove(last.Value.Location);
                _size -= last.Value.Bytes.Length;
            }
        }
    }
}
