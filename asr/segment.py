"""Cut long audio into pieces a BiLSTM can decode, at quiet points (numpy only).

``split_points(x, sr, max_seconds)`` returns sample offsets that cut ``x`` into pieces no longer
than ``max_seconds``, each cut placed at the lowest-energy 10 ms frame in the last third of the
window, so words are rarely split. ``iter_pieces(blocks, sr, max_seconds)`` makes the same cuts
on audio that arrives in blocks (a file read with :func:`asr.audio.iter_audio_blocks`), holding at
most ``max_seconds`` plus one block in memory.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

MAX_PIECE_SECONDS = 30.0  # longest piece transcribe() hands to the acoustic model at once


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


def iter_pieces(blocks: Iterable[np.ndarray], sr: int, max_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Pieces of the concatenated ``blocks`` that equal ``[x[a:b] for a, b in split_points(x, ...)]``
    of the whole signal ``x``, yielded as soon as they are known (bounded memory for any length).

    Each cut depends only on the ``max_seconds`` that follow the previous cut, and cuts fall on
    10 ms frame boundaries, so cutting a buffer that starts at the previous cut gives the cut the
    whole-signal :func:`split_points` makes.
    """
    max_len = int(max_seconds * sr)
    buf = np.zeros(0, dtype=np.float32)
    for block in blocks:
        buf = np.concatenate([buf, np.asarray(block, dtype=np.float32)]) if len(buf) else np.asarray(block, np.float32)
        while len(buf) > max_len:
            _, cut = split_points(buf[: max_len + 1], sr, max_seconds)[0]
            yield buf[:cut]
            buf = buf[cut:]
    if len(buf):
        for a, b in split_points(buf, sr, max_seconds):
            yield buf[a:b]


def group_pieces(pieces: Iterable[np.ndarray], max_samples: int) -> Iterator[list[np.ndarray]]:
    """Consecutive pieces in groups of at most ``max_samples`` in total (at least one piece each),
    to batch a few pieces through the model without holding the whole signal."""
    group: list[np.ndarray] = []
    n = 0
    for piece in pieces:
        if group and n + len(piece) > max_samples:
            yield group
            group, n = [], 0
        group.append(piece)
        n += len(piece)
    if group:
        yield group
