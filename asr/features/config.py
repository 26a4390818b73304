"""The feature config (:class:`FeatureConfig`), its frame arithmetic and the Kaldi constants.

Torch-free: the ONNX runtime builds its numpy front end from the same frozen config the trainer
uses (a runtime package stores it in ``runtime.json``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .. import config as config_mod
from ..errors import ConfigError

FEATURE_KINDS = ("fbank", "mfcc", "kaldi_fbank")

#: Kaldi works on int16-range samples: waveforms in [-1, 1] are scaled by this first (dither is in these units).
KALDI_INT16_SCALE = 32768.0
#: Kaldi floors the mel power at float32 epsilon before the log.
KALDI_EPSILON = float(np.finfo(np.float32).eps)
#: Kaldi's pre-emphasis coefficient (``y[i] -= 0.97 * y[i-1]``).
KALDI_PREEMPH = 0.97


@dataclass(frozen=True)
class FeatureConfig:
    kind: Literal["fbank", "mfcc", "kaldi_fbank"] = "fbank"  # log-mel, MFCC, or Kaldi-compatible fbank
    sample_rate: int = 16000  # audio is resampled to this rate before feature extraction (Hz)
    n_fft: int = 512  # FFT size in samples (fbank/mfcc; kaldi_fbank pads win_length to a power of 2)
    win_length: int = 400  # analysis window length in samples (400 = 25 ms at 16 kHz)
    hop_length: int = 160  # frame shift in samples (160 = 10 ms at 16 kHz)
    n_mels: int = 80  # number of mel filters
    n_mfcc: int = 40  # number of cepstral coefficients kept (mfcc only)
    fmin: float = 20.0  # lowest filter edge (Hz)
    fmax: float | None = None  # highest filter edge (Hz); None = sample_rate / 2
    dither: float = 0.0  # Gaussian dither std in int16 units added to the waveform (0 = off)
    log_floor: float = 1e-6  # mel power is floored at this before the log (fbank, mfcc)

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in FEATURE_KINDS:
            problems.append(f"kind {self.kind!r} is not one of {', '.join(FEATURE_KINDS)}")
        if self.sample_rate <= 0:
            problems.append(f"sample_rate must be > 0, got {self.sample_rate}")
        if self.win_length <= 0 or self.hop_length <= 0:
            problems.append("win_length and hop_length must be > 0")
        if self.kind != "kaldi_fbank" and self.win_length > self.n_fft:
            problems.append(f"win_length {self.win_length} must be <= n_fft {self.n_fft}")
        if self.n_mels <= 0:
            problems.append(f"n_mels must be > 0, got {self.n_mels}")
        if self.kind == "mfcc" and not 0 < self.n_mfcc <= self.n_mels:
            problems.append(f"n_mfcc must be in 1..n_mels ({self.n_mels}), got {self.n_mfcc}")
        top = self.sample_rate / 2
        fmax = top if self.fmax is None else self.fmax
        if not 0 <= self.fmin < fmax <= top:
            problems.append(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={self.fmax}")
        if self.dither < 0:
            problems.append(f"dither must be >= 0, got {self.dither}")
        if self.log_floor <= 0:
            problems.append(f"log_floor must be > 0, got {self.log_floor}")
        if problems:
            raise ConfigError("FeatureConfig: " + "; ".join(problems))

    @property
    def dim(self) -> int:
        """Feature dimension F."""
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    @property
    def f_max(self) -> float:
        """The upper filter edge in Hz (``fmax``, or the Nyquist frequency when None)."""
        return float(self.sample_rate / 2 if self.fmax is None else self.fmax)

    @property
    def fft_size(self) -> int:
        """FFT length: ``n_fft``; for kaldi_fbank ``win_length`` rounded up to a power of two."""
        if self.kind == "kaldi_fbank":
            return 1 << (self.win_length - 1).bit_length()
        return self.n_fft

    @property
    def frame_length(self) -> int:
        """Samples one frame reads: ``win_length`` (kaldi_fbank), else ``n_fft`` of the centre-padded signal."""
        return self.win_length if self.kind == "kaldi_fbank" else self.n_fft


def load_feature_config(path: str | os.PathLike | None = None,
                        overrides: dict[str, str] | None = None) -> FeatureConfig:
    """Read a FeatureConfig from YAML (unknown keys/wrong types raise ConfigError) plus overrides."""
    return config_mod.load(FeatureConfig, path, overrides)


def num_frames(num_samples: int, cfg: FeatureConfig) -> int:
    """Number of frames the extractors return for ``num_samples`` samples.

    kaldi_fbank (snip_edges): ``1 + (N - win_length) // hop_length``, 0 when N < win_length;
    fbank/mfcc (centred frames): ``1 + N // hop_length``.
    """
    if cfg.kind == "kaldi_fbank":
        if num_samples < cfg.win_length:
            return 0
        return 1 + (num_samples - cfg.win_length) // cfg.hop_length
    return 1 + num_samples // cfg.hop_length
