"""Greedy (best-path) CTC decoding: argmax per frame, collapse repeats, drop blanks.

The one greedy decoder of the toolkit (training's dev metrics, the PyTorch API, the onnxruntime
recognizer, export's parity checks). numpy only, so the torch-free runtime can use it: a caller
holding a torch tensor passes ``t.cpu().numpy()``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def collapse(ids: Sequence[int] | np.ndarray, blank_id: int = 0) -> list[int]:
    """Collapse repeated frame labels and remove blanks: [a a _ a b b] -> [a a b]."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size == 0:
        return []
    keep = np.ones(ids.shape[0], dtype=bool)
    keep[1:] = ids[1:] != ids[:-1]
    keep &= ids != blank_id
    return ids[keep].tolist()


def greedy_decode(log_probs: np.ndarray, lengths: Sequence[int] | np.ndarray | None = None,
                  blank_id: int = 0) -> list[list[int]]:
    """Best-path decoding of numpy log-probs (or probabilities, or logits: only the argmax counts).

    ``log_probs``: (T, V) for one utterance, or (B, T, V) with ``lengths`` (B,) valid frames each
    (default: all T). Returns one token-id list per utterance (a list of one list for (T, V)).
    """
    best = np.asarray(log_probs).argmax(axis=-1)
    if best.ndim == 1:
        return [collapse(best, blank_id)]
    if lengths is None:
        lengths = [best.shape[1]] * best.shape[0]
    return [collapse(best[i, : int(n)], blank_id) for i, n in enumerate(lengths)]
