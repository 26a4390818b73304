"""numpy feature front end matching :class:`asr.features.FeatureExtractor` (no torch).

Implements the three feature kinds exactly as documented in :mod:`asr.features` using the
matrices that :func:`asr.features.feature_matrices` produced at export time (``feat_window.npy``,
``feat_mel.npy``, ``feat_dct.npy`` in the runtime package), so only float rounding differs:
the parity test (tests/test_runtime.py) bounds the difference to the torch extractor at 2e-3 absolute
on log-mel features of speech-like audio (float32 FFT vs float32 FFT of a different library; the
power spectrum is accumulated in float64 here).

:class:`StreamingFeatures` produces the same frames incrementally from audio chunks of any size:
concatenating its output equals ``compute`` of the whole signal bit for bit (each frame is computed
by the same per-frame code path on the same samples).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

KALDI_INT16_SCALE = 32768.0
KALDI_EPSILON = float(np.finfo(np.float32).eps)
KALDI_PREEMPH = 0.97


@dataclass(frozen=True)
class FeatureSpec:
    kind: str = "fbank"
    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 80
    n_mfcc: int = 40
    fmin: float = 20.0
    fmax: float | None = None
    dither: float = 0.0
    log_floor: float = 1e-6

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpec":
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in (d or {}).items() if k in fields})

    @property
    def dim(self) -> int:
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    @property
    def frame_length(self) -> int:
        """Samples one frame reads (after the centre padding for fbank/mfcc)."""
        if self.kind == "kaldi_fbank":
            return self.win_length
        return self.n_fft


class NumpyFeatures:
    """Whole-signal feature computation: ``compute(x (N,) float) -> (T, F) float32``."""

    def __init__(self, spec: FeatureSpec, window: np.ndarray, mel: np.ndarray, dct: np.ndarray | None = None):
        self.spec = spec
        if spec.kind not in ("fbank", "mfcc", "kaldi_fbank"):
            raise ValueError(f"unknown feature kind {spec.kind!r}")
        if spec.kind == "mfcc" and dct is None:
            raise ValueError("mfcc features need the DCT matrix (feat_dct.npy)")
        self.window = np.asarray(window, np.float64)
        self.mel = np.asarray(mel, np.float64)
        self.dct = None if dct is None else np.asarray(dct, np.float64)
        if spec.kind == "kaldi_fbank":
            self.n_fft = 1 << (spec.win_length - 1).bit_length()
        else:
            self.n_fft = spec.n_fft
        if self.mel.shape[0] != self.n_fft // 2 + 1:
            raise ValueError(f"mel matrix has {self.mel.shape[0]} rows, expected {self.n_fft // 2 + 1}")
        # fbank/mfcc: the window is zero outside [lo, hi) (win_length < n_fft); transforming only that
        # span (rfft zero-pads it to n_fft) is a circular shift of the frame: same power spectrum, ~25% less work
        nz = np.flatnonzero(self.window)
        self._lo, self._hi = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, len(self.window))
        self._win_span = np.ascontiguousarray(self.window[self._lo:self._hi])

    @classmethod
    def from_package(cls, package_dir: str | Path, feature_config: dict) -> "NumpyFeatures":
        pkg = Path(package_dir)
        spec = FeatureSpec.from_dict(feature_config)

        def load(name):
            p = pkg / f"feat_{name}.npy"
            return np.load(p) if p.is_file() else None

        window, mel = load("window"), load("mel")
        if window is None or mel is None:
            raise FileNotFoundError(f"{pkg}: feat_window.npy / feat_mel.npy missing; re-run `asr export`")
        return cls(spec, window, mel, load("dct"))

    @property
    def dim(self) -> int:
        return self.spec.dim

    def num_frames(self, num_samples: int) -> int:
        s = self.spec
        if s.kind == "kaldi_fbank":
            return 0 if num_samples < s.win_length else 1 + (num_samples - s.win_length) // s.hop_length
        return 1 + num_samples // s.hop_length

    # -- per-frame maths (shared by the whole-signal and the streaming path) --
    def frames_to_features(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` (T, frame_length) raw samples (float) -> features (T, F) float32."""
        s = self.spec
        if frames.shape[0] == 0:
            return np.zeros((0, self.dim), np.float32)
        if s.kind == "kaldi_fbank":
            fr = np.asarray(frames, np.float64) * KALDI_INT16_SCALE
            fr = fr - fr.mean(axis=1, keepdims=True)
            prev = np.concatenate([fr[:, :1], fr[:, :-1]], axis=1)
            fr = fr - KALDI_PREEMPH * prev
            fr = fr * self.window
            spec = np.fft.rfft(fr, n=self.n_fft, axis=1)
        else:
            spec = np.fft.rfft(frames[:, self._lo:self._hi] * self._win_span, n=self.n_fft, axis=1)
        power = spec.real * spec.real
        power += spec.imag * spec.imag
        mel = power @ self.mel
        if s.kind == "kaldi_fbank":
            np.maximum(mel, KALDI_EPSILON, out=mel)
            return np.log(mel, out=mel).astype(np.float32)
        np.maximum(mel, s.log_floor, out=mel)
        if s.kind == "fbank":
            return np.log(mel, out=mel).astype(np.float32)
        db = 10.0 * np.log10(mel, out=mel)
        return (db @ self.dct).astype(np.float32)

    def _dither(self, x: np.ndarray) -> np.ndarray:
        # dither is a training-time option; inference is deterministic (dither ignored)
        return x

    def compute(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32).reshape(-1)
        s = self.spec
        if s.kind != "kaldi_fbank":
            pad = s.n_fft // 2
            x = np.concatenate([np.zeros(pad, np.float32), x, np.zeros(pad, np.float32)])
        T = self.num_frames(len(x) - (0 if s.kind == "kaldi_fbank" else 2 * (s.n_fft // 2)))
        if T <= 0:
            return np.zeros((0, self.dim), np.float32)
        L = s.frame_length
        view = np.lib.stride_tricks.sliding_window_view(x, L)[:: s.hop_length][:T]
        out = []
        for i in range(0, T, 2000):  # bounded temporaries for long inputs
            out.append(self.frames_to_features(view[i:i + 2000]))
        return np.concatenate(out) if len(out) > 1 else out[0]

    __call__ = compute


class StreamingFeatures:
    """Incremental features: ``accept(chunk) -> new frames``, ``finish() -> last frames``.

    The concatenation of all returned frames equals ``NumpyFeatures.compute`` of the whole signal.
    Memory is bounded: only the samples of frames not yet complete are kept.
    """

    def __init__(self, feats: NumpyFeatures):
        self.f = feats
        s = feats.spec
        self.hop, self.L = s.hop_length, s.frame_length
        self.center = s.kind != "kaldi_fbank"
        self.reset()

    def reset(self) -> None:
        pad = self.f.spec.n_fft // 2 if self.center else 0
        self.buf = np.zeros(pad, np.float32)  # samples from self.buf_start (padded coordinates)
        self.n_samples = 0  # real samples received
        self.n_frames = 0  # frames emitted
        self.done = False

    def _emit(self, limit: int | None = None) -> np.ndarray:
        avail = (len(self.buf) - self.L) // self.hop + 1 if len(self.buf) >= self.L else 0
        if limit is not None:
            avail = min(avail, limit - self.n_frames)
        if avail <= 0:
            return np.zeros((0, self.f.dim), np.float32)
        view = np.lib.stride_tricks.sliding_window_view(self.buf, self.L)[:: self.hop][:avail]
        out = self.f.frames_to_features(view)
        self.buf = self.buf[avail * self.hop:].copy()
        self.n_frames += avail
        return out

    def accept(self, chunk: np.ndarray) -> np.ndarray:
        if self.done:
            raise RuntimeError("StreamingFeatures.accept() after finish(); call reset()")
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self.n_samples += len(chunk)
        self.buf = np.concatenate([self.buf, chunk])
        total = self.f.num_frames(self.n_samples)
        return self._emit(total)

    def finish(self) -> np.ndarray:
        if self.done:
            return np.zeros((0, self.f.dim), np.float32)
        self.done = True
        if self.center:
            self.buf = np.concatenate([self.buf, np.zeros(self.f.spec.n_fft // 2, np.float32)])
        return self._emit(self.f.num_frames(self.n_samples))
