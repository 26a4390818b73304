"""Open-addressing hash tables ``int64 key -> int32 value`` for numba code (linear probing, a
power-of-two capacity, -1 = empty slot): the beam search's prefix trie and the n-gram LM's tables.
Also the one ``njit`` the toolkit's numba code uses (plain Python without numba, or with
``ASR_NO_NUMBA`` set)."""
from __future__ import annotations

import os

try:  # numba ships with librosa; without it the same code runs (slowly) as plain Python
    if os.environ.get("ASR_NO_NUMBA"):
        raise ImportError
    from numba import njit
except ImportError:  # pragma: no cover
    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


@njit(cache=True, inline="always")
def _hslot(key, mask):
    h = (key * 2654435761 + (key >> 13)) & mask
    return h


@njit(cache=True, _nrt=False)
def _hash_find(h_keys, h_vals, key):
    mask = h_keys.shape[0] - 1
    s = _hslot(key, mask)
    while True:
        k = h_keys[s]
        if k == key:
            return h_vals[s]
        if k == -1:
            return -1
        s = (s + 1) & mask


@njit(cache=True, _nrt=False)
def _hash_insert(h_keys, h_vals, key, val):
    mask = h_keys.shape[0] - 1
    s = _hslot(key, mask)
    while h_keys[s] != -1:
        s = (s + 1) & mask
    h_keys[s] = key
    h_vals[s] = val
