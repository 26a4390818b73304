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

from pathlib import Path

import numpy as np

from .. import config as config_mod
from ..errors import ConfigError, ModelPackageError
from ..features.config import KALDI_EPSILON, KALDI_INT16_SCALE, KALDI_PREEMPH, FeatureConfig, num_frames


class NumpyFeatures:
    """Whole-signal feature computation: ``compute(x (N,) float) -> (T, F) float32``.

    ``cfg`` is the model's :class:`~asr.features.config.FeatureConfig`; ``window``/``mel``/``dct``
    the arrays of :func:`asr.features.feature_matrices`. ``cfg.dither`` is a training-time option:
    inference is deterministic, so it is not applied here.
    """

    def __init__(self, cfg: FeatureConfig, window: np.ndarray, mel: np.ndarray, dct: np.ndarray | None = None):
        self.cfg = cfg
        if cfg.kind == "mfcc" and dct is None:
            raise ValueError("mfcc features need the DCT matrix (feat_dct.npy)")
        self.window = np.asarray(window, np.float64)
        self.mel = np.asarray(mel, np.float64)
        self.dct = None if dct is None else np.asarray(dct, np.float64)
        self.n_fft = cfg.fft_size
        if self.mel.shape[0] != self.n_fft // 2 + 1:
            raise ValueError(f"mel matrix has {self.mel.shape[0]} rows, expected {self.n_fft // 2 + 1}")
        # fbank/mfcc: the window is zero outside [lo, hi) (win_length < n_fft); transforming only that
        # span (rfft zero-pads it to n_fft) is a circular shift of the frame: same power spectrum, ~25% less work
        nz = np.flatnonzero(self.window)
        self._lo, self._hi = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, len(self.window))
        self._win_span = np.ascontiguousarray(self.window[self._lo:self._hi])

    @classmethod
    def from_package(cls, package_dir: str | Path, feature_config: "dict | FeatureConfig") -> "NumpyFeatures":
        """From a runtime package: ``feature_config`` (runtime.json's ``features``, checked here when
        it is the raw mapping) and its feat_*.npy."""
        pkg = Path(package_dir)
        cfg = feature_config
        if not isinstance(cfg, FeatureConfig):
            try:
                cfg = config_mod.from_dict(FeatureConfig, feature_config, f"{pkg / 'runtime.json'} features")
            except ConfigError as e:
                raise ModelPackageError(f"{e}; export the package again with `asr export`") from None

        def load(name):
            p = pkg / f"feat_{name}.npy"
            return np.load(p) if p.is_file() else None

        window, mel = load("window"), load("mel")
        if window is None or mel is None:
            raise ModelPackageError(f"{pkg}: feat_window.npy / feat_mel.npy missing; re-run `asr export`")
        try:
            return cls(cfg, window, mel, load("dct"))
        except ValueError as e:
            raise ModelPackageError(f"{pkg}: {e}; re-run `asr export`") from None

    @property
    def dim(self) -> int:
        return self.cfg.dim

    def num_frames(self, num_samples: int) -> int:
        return num_frames(num_samples, self.cfg)

    # -- per-frame maths (shared by the whole-signal and the streaming path) --
    def frames_to_features(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` (T, frame_length) raw samples (float) -> features (T, F) float32."""
        s = self.cfg
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

    def compute(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32).reshape(-1)
        s = self.cfg
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
        s = feats.cfg
        self.hop, self.L = s.hop_length, s.frame_length
        self.center = s.kind != "kaldi_fbank"
        self.reset()

    def reset(self) -> None:
        pad = self.f.cfg.n_fft // 2 if self.center else 0
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
            self.buf = np.concatenate([self.buf, np.zeros(self.f.cfg.n_fft // 2, np.float32)])
        return self._emit(self.f.num_frames(self.n_samples))
