"""Cutting long audio into <= 30 s pieces at quiet points, whole (split_points) or block by block
(iter_pieces, the bounded-memory path transcribe() uses)."""
from __future__ import annotations

import numpy as np
import pytest

from asr.segment import frame_energy_db, group_pieces, iter_pieces, split_points


def _bursty(seconds: float, sr: int, seed: int) -> np.ndarray:
    """Noise bursts of random loudness in 50 ms steps, with a few silent gaps."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    step = sr // 20
    env = np.repeat(rng.uniform(0.0, 1.0, n // step + 1) ** 3, step)[:n]
    return (rng.standard_normal(n) * env).astype(np.float32)


@pytest.mark.parametrize("seconds,sr,block,max_s", [(200.3, 16000, 7 * 16000, 30.0), (95.0, 8000, 333, 10.0),
                                                    (29.0, 16000, 1000, 30.0), (61.0, 16000, 30 * 16000, 30.0),
                                                    (30.0, 16000, 4096, 30.0)])
def test_iter_pieces_equals_split_points_of_the_whole(seconds, sr, block, max_s):
    x = _bursty(seconds, sr, seed=int(seconds))
    spans = split_points(x, sr, max_s)
    # the spans tile the signal and respect the limit
    assert spans[0][0] == 0 and spans[-1][1] == len(x)
    assert all(b0 == a1 for (_, b0), (a1, _) in zip(spans, spans[1:]))
    assert all(0 < b - a <= int(max_s * sr) for a, b in spans)
    got = list(iter_pieces((x[i:i + block] for i in range(0, len(x), block)), sr, max_s))
    assert len(got) == len(spans)
    for (a, b), piece in zip(spans, got):
        assert np.array_equal(piece, x[a:b])


def test_cuts_fall_in_quiet_frames():
    sr = 16000
    rng = np.random.default_rng(1)
    x = rng.standard_normal(70 * sr).astype(np.float32) * 0.5
    for t in (25.0, 52.0):  # 0.3 s of silence where a cut is allowed (last third of the window)
        x[int(t * sr):int((t + 0.3) * sr)] = 0.0
    cuts = [b for _, b in split_points(x, sr, 30.0)[:-1]]
    assert len(cuts) == 2
    for cut, t in zip(cuts, (25.0, 52.0)):
        assert t <= cut / sr <= t + 0.3
        assert frame_energy_db(x[cut:cut + 160], sr)[0] < -90


def test_iter_pieces_holds_one_piece_not_the_file():
    """The first piece comes out after about max_seconds of blocks were read, not after the end."""
    sr, block = 16000, 16000  # 1 s blocks
    x = _bursty(600.0, sr, seed=3)
    read = []

    def blocks():
        for i in range(0, len(x), block):
            read.append(i)
            yield x[i:i + block]

    it = iter_pieces(blocks(), sr, 30.0)
    first = next(it)
    assert len(first) <= 30 * sr
    assert len(read) <= 31  # 600 blocks in the file
    rest = list(it)
    assert sum(map(len, [first, *rest])) == len(x)


def test_group_pieces():
    pieces = [np.zeros(n, np.float32) for n in (5, 5, 5, 12, 1, 1)]
    groups = list(group_pieces(pieces, 10))
    assert [[len(p) for p in g] for g in groups] == [[5, 5], [5], [12], [1, 1]]
    assert list(group_pieces([], 10)) == []
