using System.Security.Cryptography;

namespace MambaSt.Batch.Inference;

/// <summary>Identifies a style encoding: the style's content hash, the model, and the token grid it was encoded at.</summary>
public readonly record struct StyleCacheKey(string ContentHash, string ModelId, int GridWidth, int GridHeight);

/// <summary>
/// Least-recently-used cache of <see cref="StyleEncoding"/>s bounded in bytes of tokens. Thread-safe; concurrent misses
/// for one key run the encoder once and share its result (single flight). A failed encoding is not cached.
/// </summary>
public sealed class StyleEncodingCache
{
    private readonly Lock _lock = new();
    private readonly Dictionary<StyleCacheKey, LinkedListNode<(StyleCacheKey Key, StyleEncoding Value)>> _entries = [];
    private readonly LinkedList<(StyleCacheKey Key, StyleEncoding Value)> _recency = new();
    private readonly Dictionary<StyleCacheKey, Lazy<StyleEncoding>> _inFlight = [];
    private long _hits;
    private long _misses;
    private long _evictions;
    private long _bytes;

    public StyleEncodingCache(long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacityBytes);
        CapacityBytes = capacityBytes;
    }

    public long CapacityBytes { get; }

    /// <summary>Lookups answered from the cache or by joining an encoding already in flight.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Lookups that ran the encoder.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    public long Evictions => Interlocked.Read(ref _evictions);

    public long CurrentBytes
    {
        get
        {
            lock (_lock)
            {
                return _bytes;
            }
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>SHA-256 (hex) over the size and pixels, for callers that have no hash of the encoded file.</summary>
    public static string HashPixels(RgbPixels pixels)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> size = stackalloc byte[8];
        BitConverter.TryWriteBytes(size, pixels.Width);
        BitConverter.TryWriteBytes(size[4..], pixels.Height);
        sha.AppendData(size);
        sha.AppendData(pixels.Rgb.Span);
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>Encodes <paramref name="style"/> with <paramref name="encoder"/> unless an encoding for the same content
    /// hash (<paramref name="contentHash"/>, e.g. SHA-256 of the encoded file; the pixels' hash when null), model and grid is cached.</summary>
    public StyleEncoding GetOrEncode(IStyleEncoder encoder, RgbPixels style, string? contentHash = null)
    {
        var (gridW, gridH) = encoder.StyleGrid(style.Width, style.Height);
        var key = new StyleCacheKey(contentHash ?? HashPixels(style), $"{encoder.Model.Id}@{encoder.Model.Version}", gridW, gridH);
        return GetOrAdd(key, _ => encoder.EncodeStyle(style));
    }

    public StyleEncoding GetOrAdd(StyleCacheKey key, Func<StyleCacheKey, StyleEncoding> encode)
    {
        Lazy<StyleEncoding> pending;
        var owner = false;
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var node))
            {
                _recency.Remove(node);
                _recency.AddFirst(node);
                _hits++;
                return node.Value.Value;
            }

            if (!_inFlight.TryGetValue(key, out pending!))
            {
                pending = new Lazy<StyleEncoding>(() => encode(key), LazyThreadSafetyMode.ExecutionAndPublication);
                _inFlight[key] = pending;
                owner = true;
                _misses++;
            }
            else
            {
                _hits++;
            }
        }

        StyleEncoding value;
        try
        {
            value = pending.Value;
        }
        catch
        {
            if (owner)
            {
                lock (_lock)
                {
                    _inFlight.Remove(key);
                }
            }

            throw;
        }

        if (owner)
        {
            lock (_lock)
            {
                _inFlight.Remove(key);
                Insert(key, value);
            }
        }

        return value;
    }

    private void Insert(StyleCacheKey key, StyleEncoding value)
    {
        if (value.SizeInBytes > CapacityBytes || _entries.ContainsKey(key))
        {
            return;
        }

        while (_bytes + value.SizeInBytes > CapacityBytes && _recency.Last is { } oldest)
        {
            _recency.RemoveLast();
            _entries.Remove(oldest.Value.Key);
            _bytes -= oldest.Value.Value.SizeInBytes;
            _evictions++;
        }

        _entries[key] = _recency.AddFirst((key, value));
        _bytes += value.SizeInBytes;
    }
}
