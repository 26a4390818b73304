"""Cepstral mean and variance normalisation, in numpy: one class for training and inference.

:class:`CMVN` (global per-dimension mean/std, stats in ``.npz``) is what the dump writes, the
dataset and trainer apply, and both recognizers (PyTorch and the torch-free ONNX runtime) apply
to the features of an utterance. :func:`utterance_cmvn` normalises over one utterance's frames.
torch tensors are accepted where torch is already imported (this module never imports it).
"""
from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..atomic import atomic_save
from ..errors import ASRError

CMVN_STD_FLOOR = 1e-5


def _torch_of(x: Any):
    """The torch module when ``x`` is a torch tensor, else None."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(x, torch.Tensor) else None


class CMVNAccumulator:
    """Accumulates per-dimension sum and sum of squares (float64) over frames of many utterances."""

    def __init__(self, dim: int | None = None):
        self.dim = dim
        self.count = 0
        self.sum = None if dim is None else np.zeros(dim, np.float64)
        self.sumsq = None if dim is None else np.zeros(dim, np.float64)

    def _ensure(self, dim: int) -> None:
        if self.sum is None:
            self.dim = dim
            self.sum = np.zeros(dim, np.float64)
            self.sumsq = np.zeros(dim, np.float64)
        elif dim != self.dim:
            raise ValueError(f"CMVN stats have dimension {self.dim}, got features of dimension {dim}")

    def add(self, feats: Any) -> None:
        """Add the frames of one utterance ``(T, F)`` (numpy or torch)."""
        if _torch_of(feats) is not None:
            feats = feats.detach().cpu().numpy()
        feats = np.asarray(feats, dtype=np.float64)
        if feats.ndim != 2:
            raise ValueError(f"expected features (T, F), got shape {feats.shape}")
        self.add_stats(feats.sum(0), (feats * feats).sum(0), feats.shape[0])

    def add_stats(self, sum_: np.ndarray, sumsq: np.ndarray, count: int) -> None:
        self._ensure(len(sum_))
        self.sum += sum_
        self.sumsq += sumsq
        self.count += int(count)

    def merge(self, other: "CMVNAccumulator") -> None:
        if other.sum is not None:
            self.add_stats(other.sum, other.sumsq, other.count)

    def compute(self) -> "CMVN":
        if self.sum is None or self.count == 0:
            raise ValueError("no frames accumulated; cannot compute CMVN statistics")
        return CMVN.from_stats(self.sum, self.sumsq, self.count)


class CMVN:
    """Global mean/variance normalisation: ``(x - mean) / std`` per feature dimension."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, count: int = 0):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"CMVN mean {self.mean.shape} and std {self.std.shape} differ in shape")
        self.count = int(count)
        self._torch_cache: dict = {}

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def from_stats(cls, sum_: np.ndarray | CMVNAccumulator, sumsq: np.ndarray | None = None,
                   count: int | None = None) -> "CMVN":
        """From accumulated sums (or a :class:`CMVNAccumulator`). std is floored at 1e-5."""
        if isinstance(sum_, CMVNAccumulator):
            return sum_.compute()
        if count is None or count <= 0:
            raise ValueError("CMVN.from_stats needs a positive frame count")
        s = np.asarray(sum_, np.float64)
        mean = s / count
        var = np.asarray(sumsq, np.float64) / count - mean * mean
        std = np.sqrt(np.maximum(var, 0.0))
        return cls(mean, np.maximum(std, CMVN_STD_FLOOR), count)

    @classmethod
    def from_features(cls, feats: Sequence[np.ndarray]) -> "CMVN":
        acc = CMVNAccumulator()
        for f in feats:
            acc.add(f)
        return acc.compute()

    def save(self, path: str | os.PathLike) -> None:
        """Atomically write ``.npz`` with ``mean``, ``std`` (float32) and ``count``."""
        def writer(f: io.BufferedWriter) -> None:
            np.savez(f, mean=self.mean, std=self.std, count=np.int64(self.count))
        atomic_save(path, writer)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CMVN":
        path = Path(path)
        if not path.is_file():
            raise ASRError(f"CMVN stats file {path} does not exist (run asr extract-features --cmvn-out)")
        try:
            with np.load(path) as z:
                return cls(z["mean"], z["std"], int(z["count"]) if "count" in z else 0)
        except (OSError, ValueError, KeyError) as e:
            raise ASRError(f"CMVN stats file {path} is unreadable or incomplete ({e}); recompute it") from None

    def apply(self, feats: Any) -> Any:
        """Normalise ``(..., F)`` numpy or torch features (torch: same device/dtype as the input)."""
        torch = _torch_of(feats)
        if torch is not None:
            key = (feats.device, feats.dtype)
            if key not in self._torch_cache:
                self._torch_cache[key] = (torch.as_tensor(self.mean, dtype=feats.dtype, device=feats.device),
                                          torch.as_tensor(1.0 / self.std, dtype=feats.dtype, device=feats.device))
            mean, inv = self._torch_cache[key]
            return (feats - mean) * inv
        feats = np.asarray(feats)
        dtype = feats.dtype if np.issubdtype(feats.dtype, np.floating) else np.float32
        return ((feats - self.mean) / self.std).astype(dtype, copy=False)

    __call__ = apply

    def __repr__(self) -> str:
        return f"CMVN(dim={self.dim}, count={self.count})"


def utterance_cmvn(feats: Any, norm_vars: bool = True, eps: float = CMVN_STD_FLOOR) -> Any:
    """Per-utterance CMVN over the time axis of ``(T, F)`` (numpy or torch)."""
    if _torch_of(feats) is not None:
        mean = feats.mean(dim=-2, keepdim=True)
        out = feats - mean
        if norm_vars:
            out = out / out.pow(2).mean(dim=-2, keepdim=True).sqrt().clamp(min=eps)
        return out
    feats = np.asarray(feats)
    out = feats - feats.mean(axis=-2, keepdims=True)
    if norm_vars:
        out = out / np.maximum(np.sqrt((out * out).mean(axis=-2, keepdims=True)), eps)
    return out.astype(feats.dtype if np.issubdtype(feats.dtype, np.floating) else np.float32, copy=False)
