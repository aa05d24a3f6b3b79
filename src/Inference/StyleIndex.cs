namespace MambaSt.Batch.Inference;

/// <summary>The seeded style-token order (SplitMix64 + Fisher-Yates), bit for bit as model/README.md specifies.</summary>
public static class StyleIndex
{
    public static long[] Generate(ulong seed, int styleTokens, int contentTokens)
    {
        var index = new long[contentTokens];
        Generate(seed, styleTokens, contentTokens, index);
        return index;
    }

    public static void Generate(ulong seed, int styleTokens, int contentTokens, Span<long> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(styleTokens, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(contentTokens, 1);
        if (destination.Length < contentTokens)
        {
            throw new ArgumentException($"Destination holds {destination.Length} values; {contentTokens} needed.", nameof(destination));
        }

        var perm = new int[styleTokens];
        for (var i = 0; i < perm.Length; i++)
        {
            perm[i] = i;
        }

        var rng = new SplitMix64(seed);
        for (var i = styleTokens - 1; i >= 1; i--)
        {
            var j = (int)(rng.Next() % (ulong)(i + 1));
            (perm[i], perm[j]) = (perm[j], perm[i]);
        }

        for (var t = 0; t < contentTokens; t++)
        {
            destination[t] = perm[(int)((long)t * styleTokens / contentTokens)];
        }
    }
}

public struct SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        unchecked
        {
            _state += 0x9E3779B97F4A7C15UL;
            var z = _state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
