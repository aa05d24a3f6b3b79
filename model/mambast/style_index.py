"""Seeded style-token index, specified so that other implementations reproduce it bit for bit.

SplitMix64 seeded with the job seed (uint64), all arithmetic mod 2^64:
    state += 0x9E3779B97F4A7C15; z = state
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    return z ^ (z >> 31)
perm = [0..Ls-1]; for i = Ls-1 down to 1: j = next() % (i+1); swap(perm[i], perm[j])
style_index[t] = perm[(t * Ls) // L]   for t in [0, L)
"""
from __future__ import annotations

import numpy as np

_MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed: int):
        self.state = int(seed) & _MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)


def style_index(seed: int, ls: int, l: int) -> np.ndarray:
    """int64 [l]: which of the `ls` style tokens feeds each of the `l` content positions."""
    if ls <= 0 or l <= 0:
        raise ValueError("ls and l must be positive")
    rng = SplitMix64(seed)
    perm = list(range(ls))
    for i in range(ls - 1, 0, -1):
        j = rng.next() % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return np.array([perm[(t * ls) // l] for t in range(l)], dtype=np.int64)
