"""Cut long audio into pieces a BiLSTM can decode, at quiet points (numpy only).

``split_points(x, sr, max_seconds)`` returns sample offsets that cut ``x`` into pieces no longer
than ``max_seconds``, each cut placed at the lowest-energy 10 ms frame in the last third of the
window, so words are rarely split.
"""
from __future__ import annotations

import numpy as np


def frame_energy_db(x: np.ndarray, sr: int, frame_ms: float = 10.0) -> np.ndarray:
    hop = max(1, int(sr * frame_ms / 1000))
    n = len(x) // hop
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    frames = x[: n * hop].reshape(n, hop).astype(np.float64)
    return (10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)).astype(np.float32)


def split_points(x: np.ndarray, sr: int, max_seconds: float = 30.0) -> list[tuple[int, int]]:
    """(start, end) sample ranges covering ``x``, each ≤ ``max_seconds``, cut at quiet frames."""
    max_len = int(max_seconds * sr)
    if len(x) <= max_len:
        return [(0, len(x))]
    hop = max(1, sr // 100)
    energy = frame_energy_db(x, sr)
    spans, start = [], 0
    while len(x) - start > max_len:
        lo = (start + (2 * max_len) // 3) // hop
        hi = (start + max_len) // hop
        cut = (lo + int(np.argmin(energy[lo:hi]))) * hop if hi > lo else start + max_len
        cut = max(cut, start + hop)
        spans.append((start, cut))
        start = cut
    spans.append((start, len(x)))
    return spans
