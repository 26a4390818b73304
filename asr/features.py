"""Acoustic features: log-mel filterbank, MFCC, Kaldi fbank; CMVN; SpecAugment; speed perturbation.

Feature kinds (``FeatureConfig.kind``)
--------------------------------------
All kinds take a float waveform in [-1, 1] at ``cfg.sample_rate`` and return float32 ``(T, F)``.

``fbank`` (F = n_mels): log-mel spectrogram, numerically the same as ``librosa.feature.melspectrogram
(y, sr, n_fft, hop_length, win_length, window="hann", center=True, pad_mode="constant", power=2,
n_mels, fmin, fmax, htk=False, norm="slaney")`` followed by ``log(max(mel, log_floor))``.
Precisely, with ``x`` the waveform (N samples), ``h = hop_length``, ``n = n_fft``:

1. pad ``x`` with ``n // 2`` zeros on both sides (``xp``, length N + 2*(n//2));
2. ``T = 1 + N // h`` frames; frame ``t`` is ``xp[t*h : t*h + n]`` (n samples);
3. multiply by ``window`` (length n): a periodic Hann window of ``win_length`` samples
   (``0.5 - 0.5*cos(2*pi*k/win_length)``, k = 0..win_length-1) zero-padded on both sides to n samples,
   starting at offset ``(n - win_length) // 2``;
4. ``P = |rfft(frame, n)|**2`` (n//2 + 1 bins; no normalisation);
5. ``mel = P @ M`` with ``M`` the (n//2+1, n_mels) Slaney-scale, Slaney-normalised triangular filterbank
   between ``fmin`` and ``fmax`` (default sample_rate/2);
6. ``log(max(mel, log_floor))`` (natural log).

``mfcc`` (F = n_mfcc): steps 1-5, then ``db = 10*log10(max(mel, log_floor))`` and
``mfcc = db @ D`` with ``D`` the (n_mels, n_mfcc) orthonormal DCT-II matrix; equal to
``librosa.feature.mfcc(S=librosa.power_to_db(mel, amin=log_floor, top_db=None), n_mfcc, dct_type=2,
norm="ortho")``. (No per-utterance ``top_db`` clipping, so features of a chunk do not depend on the
rest of the utterance; no liftering.)

``kaldi_fbank`` (F = n_mels): ``torchaudio.compliance.kaldi.fbank`` of the waveform scaled by 32768
(Kaldi's int16 range), with Kaldi's defaults otherwise: snip_edges (``T = 1 + (N - win_length) //
hop_length`` frames, 0 when N < win_length), per-frame DC removal, pre-emphasis 0.97
(``y[0] -= 0.97*y[0]``, ``y[i] -= 0.97*y[i-1]``), Povey window (``hann**0.85``, length
``win_length``, non-periodic), zero-padding to the next power of two (``n_fft`` is ignored), power
spectrum, Kaldi mel banks (HTK mel scale, no normalisation, ``fmin``..``fmax``), natural log floored
at float32 epsilon (1.1920929e-07). ``dither`` adds ``dither * N(0,1)`` in int16 units.

``feature_matrices(cfg)`` returns the exact arrays the torch code uses (``window``, ``mel``, and ``dct``
for mfcc), so a numpy re-implementation of the steps above matches to float rounding. fbank/mfcc are
computed in float64 on CPU (as librosa effectively does: its window is float64; max log-mel difference
to librosa ~1e-6) and in float32 on CUDA (a float32 FFT leaks ~1e-7 of a loud frame's energy into its
quiet bins: ~1e-4 max log-mel difference on speech, 2.5x faster on CPU); ``FeatureExtractor(cfg,
dtype=...)`` picks explicitly. Output is always float32.

For ``fbank``/``mfcc``, ``dither`` > 0 also adds ``dither/32768 * N(0,1)`` to the waveform (int16 units,
as for Kaldi); the default 0 adds nothing.

Other parts: :class:`CMVN` (global mean/variance normalisation, stats in ``.npz``) and
:func:`utterance_cmvn`; :class:`SpecAugment`; :func:`speed_perturb` and
:func:`speed_perturb_datadir` (Kaldi 3-way speed perturbation); :func:`extract_features` (dump
features of a data dir to ``.npy`` with global CMVN stats; resumable).
"""
from __future__ import annotations

import dataclasses
import io
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch

from . import config as config_mod
from .atomic import atomic_save, clean_stale_temps
from .errors import ASRError, AudioError, ConfigError, DataDirError

__all__ = [
    "FeatureConfig",
    "FeatureExtractor",
    "feature_matrices",
    "num_frames",
    "load_feature_config",
    "CMVN",
    "CMVNAccumulator",
    "utterance_cmvn",
    "SpecAugment",
    "speed_perturb",
    "speed_perturb_datadir",
    "extract_features",
]

KALDI_INT16_SCALE = 32768.0
KALDI_EPSILON = float(np.finfo(np.float32).eps)


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
        return float(self.sample_rate / 2 if self.fmax is None else self.fmax)


def load_feature_config(path: str | os.PathLike | None = None,
                        overrides: dict[str, str] | None = None) -> FeatureConfig:
    """Read a FeatureConfig from YAML (unknown keys/wrong types raise ConfigError) plus overrides."""
    return config_mod.load(FeatureConfig, path, overrides)


def num_frames(num_samples: int, cfg: FeatureConfig) -> int:
    """Number of frames ``FeatureExtractor`` returns for ``num_samples`` samples."""
    if cfg.kind == "kaldi_fbank":
        if num_samples < cfg.win_length:
            return 0
        return 1 + (num_samples - cfg.win_length) // cfg.hop_length
    return 1 + num_samples // cfg.hop_length


def _kaldi_padded_window(cfg: FeatureConfig) -> int:
    return 1 << (cfg.win_length - 1).bit_length()


def _kaldi_ms(samples: int, sr: int) -> float:
    # torchaudio computes int(sr * ms * 0.001); nudge so float rounding cannot lose a sample
    return (samples + 1e-3) * 1000.0 / sr


def _hz_to_mel_slaney(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz_slaney(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_fft//2+1, n_mels) float64 Slaney-scale, Slaney-normalised triangular filters.

    The same construction as ``librosa.filters.mel(htk=False, norm="slaney")`` (computed in float64;
    torchaudio's own float32 version leaves ~1e-7 weights at triangle edges, which matters after the log).
    """
    fft_freqs = np.arange(n_fft // 2 + 1, dtype=np.float64) * (sample_rate / n_fft)
    mel_f = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(fmin), _hz_to_mel_slaney(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return np.ascontiguousarray(weights.T)


def feature_matrices(cfg: FeatureConfig) -> dict[str, np.ndarray]:
    """The exact arrays the extractor uses (see the module docstring for the algorithm).

    fbank/mfcc arrays are float64 (the extractor computes in float64: do the same for parity);
    kaldi_fbank arrays are float32 (torchaudio's Kaldi code computes in float32).

    fbank/mfcc: ``window`` (n_fft,) zero-padded periodic Hann; ``mel`` (n_fft//2+1, n_mels);
    mfcc also ``dct`` (n_mels, n_mfcc). kaldi_fbank: ``window`` (win_length,) Povey window;
    ``mel`` (padded//2+1, n_mels) Kaldi mel banks (last row, the Nyquist bin, is zero).
    """
    if cfg.kind == "kaldi_fbank":
        from torchaudio.compliance import kaldi

        padded = _kaldi_padded_window(cfg)
        banks, _ = kaldi.get_mel_banks(cfg.n_mels, padded, float(cfg.sample_rate), cfg.fmin,
                                       cfg.f_max, 100.0, -500.0, 1.0)
        banks = torch.nn.functional.pad(banks, (0, 1))
        # exactly torchaudio's float32 Povey window
        window = torch.hann_window(cfg.win_length, periodic=False, dtype=torch.float32).pow(0.85)
        return {"window": window.numpy(), "mel": banks.T.contiguous().float().numpy()}
    ext = FeatureExtractor(cfg)
    left = (cfg.n_fft - cfg.win_length) // 2
    full = torch.zeros(cfg.n_fft, dtype=torch.float64)
    full[left:left + cfg.win_length] = ext.window
    out = {"window": full.numpy(), "mel": ext.fb.numpy().copy()}
    if cfg.kind == "mfcc":
        out["dct"] = ext.dct.detach().cpu().numpy().copy()
    return out


class FeatureExtractor(torch.nn.Module):
    """Waveform ``(N,)`` or ``(B, N)`` -> features ``(T, F)`` or ``(B, T, F)``, float32, CPU or CUDA."""

    def __init__(self, cfg: FeatureConfig | None = None, dtype: torch.dtype | None = None):
        """``dtype``: compute precision of fbank/mfcc; None = float64 on CPU (librosa parity ~1e-6),
        float32 on CUDA (~1e-4 from CPU on speech). Output is float32 either way."""
        super().__init__()
        self.cfg = cfg = cfg or FeatureConfig()
        self.compute_dtype = dtype
        if cfg.kind in ("fbank", "mfcc"):
            # the computation of torchaudio.transforms.MelSpectrogram(center=True, pad_mode="constant",
            # power=2, norm="slaney", mel_scale="slaney"), with the window and filterbank made in
            # float64 (torchaudio's float32 filterbank leaves ~1e-7 weights at triangle edges, which
            # shows after the log in quiet bands next to loud ones)
            self.register_buffer("window", torch.hann_window(cfg.win_length, periodic=True, dtype=torch.float64))
            fb = slaney_mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.f_max)
            self.register_buffer("fb", torch.from_numpy(fb))
            # the filterbank is sparse: multiply blocks of 8 filters with only the FFT bins they cover
            self._fb_blocks = []
            for start in range(0, cfg.n_mels, 8):
                end = min(start + 8, cfg.n_mels)
                rows = np.nonzero((fb[:, start:end] != 0).any(axis=1))[0]
                lo, hi = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 1)
                self._fb_blocks.append((start, end, lo, hi))
            if cfg.kind == "mfcc":
                import torchaudio

                dct = torchaudio.functional.create_dct(cfg.n_mfcc, cfg.n_mels, "ortho")
                self.register_buffer("dct", dct.to(torch.float64))
        elif cfg.kind != "kaldi_fbank":
            raise ConfigError(f"FeatureConfig.kind {cfg.kind!r} is not one of fbank, mfcc, kaldi_fbank")

    @property
    def dim(self) -> int:
        return self.cfg.dim

    def _dtype_for(self, device: torch.device) -> torch.dtype:
        if self.compute_dtype is not None:
            return self.compute_dtype
        return torch.float64 if device.type == "cpu" else torch.float32

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() not in (1, 2):
            raise ValueError(f"expected a waveform of shape (N,) or (B, N), got {tuple(wave.shape)}")
        cfg = self.cfg
        if cfg.kind == "kaldi_fbank":
            wave = wave.float()
            if wave.dim() == 2:
                return torch.stack([self._kaldi(w) for w in wave]) if len(wave) else wave.new_zeros(
                    0, num_frames(wave.shape[1], cfg), cfg.dim)
            return self._kaldi(wave)
        dt = self._dtype_for(wave.device)
        wave = wave.to(dt)
        if wave.shape[-1] == 0:  # no samples: one all-floor frame, as num_frames(0) says
            wave = torch.nn.functional.pad(wave, (0, 1))
        if cfg.dither > 0:
            wave = wave + (cfg.dither / KALDI_INT16_SCALE) * torch.randn_like(wave)
        spec = torch.stft(wave, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                          window=self.window.to(dt), center=True, pad_mode="constant", normalized=False,
                          onesided=True, return_complex=True)  # (..., n_fft//2+1, T)
        power = spec.real.square() + spec.imag.square()  # (..., n_fft//2+1, T)
        fbt = self.fb.to(dt).t()  # (n_mels, n_fft//2+1)
        mel = torch.cat([torch.matmul(fbt[s:e, lo:hi], power[..., lo:hi, :])
                         for s, e, lo, hi in self._fb_blocks], dim=-2).transpose(-1, -2)  # (..., T, n_mels)
        if cfg.kind == "fbank":
            feats = torch.clamp(mel, min=cfg.log_floor).log()
        else:
            feats = torch.matmul(10.0 * torch.log10(torch.clamp(mel, min=cfg.log_floor)), self.dct.to(dt))
        return feats.to(torch.float32).contiguous()

    def _kaldi(self, wave: torch.Tensor) -> torch.Tensor:
        from torchaudio.compliance import kaldi

        cfg = self.cfg
        if wave.shape[-1] < cfg.win_length:
            return wave.new_zeros(0, cfg.dim)
        return kaldi.fbank(
            wave.unsqueeze(0) * KALDI_INT16_SCALE, num_mel_bins=cfg.n_mels, sample_frequency=float(cfg.sample_rate),
            frame_length=_kaldi_ms(cfg.win_length, cfg.sample_rate),
            frame_shift=_kaldi_ms(cfg.hop_length, cfg.sample_rate),
            low_freq=cfg.fmin, high_freq=cfg.f_max, dither=cfg.dither, energy_floor=0.0,
        )

    @torch.no_grad()
    def compute(self, x: np.ndarray) -> np.ndarray:
        """numpy waveform ``(N,)`` -> numpy ``(T, F)`` float32 (on this module's device)."""
        x = np.asarray(x)
        if x.ndim != 1:
            raise ValueError(f"compute expects a mono waveform (N,), got shape {x.shape}")
        device = self._device()
        feats = self.forward(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device))
        return feats.cpu().numpy()

    def _device(self) -> torch.device:
        for b in self.buffers():
            return b.device
        return torch.device("cpu")


# ---------------------------------------------------------------------------------------------
# CMVN
# ---------------------------------------------------------------------------------------------

CMVN_STD_FLOOR = 1e-5


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
        if isinstance(feats, torch.Tensor):
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
        if isinstance(feats, torch.Tensor):
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
    if isinstance(feats, torch.Tensor):
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


# ---------------------------------------------------------------------------------------------
# SpecAugment
# ---------------------------------------------------------------------------------------------


class SpecAugment(torch.nn.Module):
    """Frequency and time masking (Park et al. 2019) within each utterance's valid frames.

    In train mode, each utterance b of valid length L_b gets ``freq_masks`` bands of width
    U{0..freq_width} (capped at F) and ``time_masks`` spans of width U{0..W_b} with
    ``W_b = min(max_time_width, floor(time_width_ratio * L_b))``, placed uniformly inside
    ``[0, L_b)``. Masked cells are set to ``mask_value`` (0 = the mean after CMVN). Padding frames
    (t >= L_b) are never touched. In eval mode the input is returned unchanged. Random draws come
    from ``generator`` (a CPU ``torch.Generator``) when given, so results are reproducible.
    """

    def __init__(self, freq_masks: int = 2, freq_width: int = 27, time_masks: int = 2,
                 time_width_ratio: float = 0.05, max_time_width: int = 40, mask_value: float = 0.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.freq_masks = freq_masks
        self.freq_width = freq_width
        self.time_masks = time_masks
        self.time_width_ratio = time_width_ratio
        self.max_time_width = max_time_width
        self.mask_value = mask_value
        self.generator = generator

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training:
            return x
        if x.dim() != 3:
            raise ValueError(f"SpecAugment expects (B, T, F), got {tuple(x.shape)}")
        B, T, F = x.shape
        if B == 0 or T == 0:
            return x
        gen = generator if generator is not None else self.generator
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long)
        lens = lengths.detach().to("cpu", torch.long).clamp(0, T)
        dev = x.device
        # random draws on the CPU (seedable generator); masks built on the input's device
        t_idx = torch.arange(T, device=dev)
        f_idx = torch.arange(F, device=dev)
        valid_t = t_idx[None, :] < lens.to(dev)[:, None]  # (B, T)
        mask = torch.zeros(B, T, F, dtype=torch.bool, device=dev)
        if self.freq_masks > 0 and self.freq_width > 0:
            fw_max = min(self.freq_width, F)
            k = self.freq_masks
            w = (torch.rand(B, k, generator=gen) * (fw_max + 1)).long().clamp(max=fw_max)
            start = (torch.rand(B, k, generator=gen) * (F - w + 1).float()).long()
            start = torch.minimum(start, F - w)
            start, w = start.to(dev), w.to(dev)
            fm = (f_idx[None, None, :] >= start[..., None]) & (f_idx[None, None, :] < (start + w)[..., None])
            mask |= fm.any(1)[:, None, :] & valid_t[:, :, None]
        if self.time_masks > 0:
            tw_max = torch.clamp((lens.float() * self.time_width_ratio).floor().long(), max=self.max_time_width)
            k = self.time_masks
            w = (torch.rand(B, k, generator=gen) * (tw_max[:, None] + 1).float()).long()
            w = torch.minimum(w, tw_max[:, None])
            room = (lens[:, None] - w).clamp(min=0)
            start = (torch.rand(B, k, generator=gen) * (room + 1).float()).long()
            start = torch.minimum(start, room)
            start, w = start.to(dev), w.to(dev)
            tm = (t_idx[None, None, :] >= start[..., None]) & (t_idx[None, None, :] < (start + w)[..., None])
            mask |= (tm.any(1) & valid_t)[:, :, None]
        return x.masked_fill(mask, self.mask_value)

    def extra_repr(self) -> str:
        return (f"freq_masks={self.freq_masks}, freq_width={self.freq_width}, time_masks={self.time_masks}, "
                f"time_width_ratio={self.time_width_ratio}, max_time_width={self.max_time_width}")


def mel_bin_centers(cfg: FeatureConfig) -> np.ndarray:
    """Centre frequency (Hz) of each of the ``n_mels`` filters of a ``fbank`` or ``kaldi_fbank`` config.

    fbank: Slaney mel scale (as ``slaney_mel_filterbank``); kaldi_fbank: the centres torchaudio's
    ``kaldi.get_mel_banks`` reports for the banks the extractor uses. MFCC bins are cepstral, not
    frequencies: a ``ConfigError`` says so.
    """
    if cfg.kind == "fbank":
        lo, hi = _hz_to_mel_slaney(cfg.fmin), _hz_to_mel_slaney(cfg.f_max)
        return _mel_to_hz_slaney(np.linspace(lo, hi, cfg.n_mels + 2))[1:-1]
    if cfg.kind == "kaldi_fbank":
        from torchaudio.compliance import kaldi

        _, centers = kaldi.get_mel_banks(cfg.n_mels, _kaldi_padded_window(cfg), float(cfg.sample_rate), cfg.fmin,
                                         cfg.f_max, 100.0, -500.0, 1.0)
        return centers.double().numpy().reshape(-1)
    raise ConfigError(f"feature kind {cfg.kind!r} has no frequency axis to warp (cepstral coefficients); "
                      "frequency warping needs fbank or kaldi_fbank features")


class FreqWarp(torch.nn.Module):
    """Vocal-tract-length perturbation of log-mel features (Jaitly & Hinton 2013; Kaldi's VTLN warp,
    ``torchaudio.compliance.kaldi.vtln_warp_freq``).

    In train mode each utterance gets a warp factor ``alpha ~ U[1 - max_warp, 1 + max_warp]``: the
    value of output bin i is the input spectrum read at frequency ``vtln_warp_freq(..., alpha, c_i)``
    (``c_i`` = the bin's centre, ``centers``), linearly interpolated between neighbouring bins, so
    formants move by the factor alpha as for a shorter or longer vocal tract. ``mean``/``std``
    (global CMVN) let it take and return normalised features: the warp is done on the log-mel
    values. ``low_freq``/``high_freq``: the filterbank's band edges (default: the outer centres).
    Padding frames (t >= length) stay as they were. Eval mode, or ``max_warp == 0``,
    returns the input unchanged. Draws come from the global torch RNG (checkpointed, so a resumed
    run draws the same factors) or ``generator``.
    """

    def __init__(self, centers: Sequence[float], max_warp: float = 0.1, mean=None, std=None,
                 low_freq: float | None = None, high_freq: float | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        if not 0.0 <= max_warp < 0.5:
            raise ConfigError(f"frequency warp: max_warp must be within [0, 0.5), got {max_warp}")
        c = np.asarray(centers, dtype=np.float64)
        if c.ndim != 1 or c.size < 2 or np.any(np.diff(c) <= 0):
            raise ConfigError("frequency warp: bin centres must be at least 2 increasing frequencies")
        self.centers = c
        self.max_warp = float(max_warp)
        self.low_freq = float(c[0] if low_freq is None else low_freq)
        self.high_freq = float(c[-1] if high_freq is None else high_freq)
        if self.high_freq - 500.0 <= 1.5 * (self.low_freq + 80.0):
            raise ConfigError(f"frequency warp: the band {self.low_freq:g}-{self.high_freq:g} Hz is too narrow to warp")
        self.generator = generator
        for name, v in (("mean", mean), ("std", std)):
            self.register_buffer(name, None if v is None else torch.as_tensor(np.asarray(v), dtype=torch.float32),
                                 persistent=False)

    def positions(self, alpha: float) -> np.ndarray:
        """Fractional input-bin position read by each output bin, for warp factor ``alpha``."""
        from torchaudio.compliance import kaldi

        # Kaldi's cut-offs: the warp is linear from low_freq + 80 Hz (100 Hz for fmin 20) to 500 Hz below the top
        src = kaldi.vtln_warp_freq(self.low_freq + 80.0, self.high_freq - 500.0, self.low_freq, self.high_freq,
                                   float(alpha), torch.from_numpy(self.centers)).numpy()
        return np.interp(src, self.centers, np.arange(self.centers.size, dtype=np.float64))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training or self.max_warp == 0.0:
            return x
        if x.dim() != 3 or x.shape[-1] != self.centers.size:
            raise ValueError(f"FreqWarp expects (B, T, {self.centers.size}), got {tuple(x.shape)}")
        B, T, F = x.shape
        if B == 0 or T == 0:
            return x
        gen = generator if generator is not None else self.generator
        alphas = 1.0 + (torch.rand(B, generator=gen, dtype=torch.float64) * 2.0 - 1.0) * self.max_warp
        return self.warp(x, alphas.tolist(), lengths)

    def warp(self, x: torch.Tensor, alphas: Sequence[float], lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B, T, F) with utterance b warped by ``alphas[b]`` (whatever the mode)."""
        B, T, F = x.shape
        if len(alphas) != B:
            raise ValueError(f"FreqWarp.warp: {len(alphas)} warp factors for a batch of {B}")
        pos = torch.from_numpy(np.stack([self.positions(float(a)) for a in alphas])).to(x.device, x.dtype)
        i0 = pos.floor().long().clamp(0, F - 2)
        w = (pos - i0.to(x.dtype)).clamp(0.0, 1.0)
        y = x if self.mean is None else x * self.std.to(x) + self.mean.to(x)
        idx0 = i0[:, None, :].expand(B, T, F)
        y0 = torch.gather(y, 2, idx0)
        y1 = torch.gather(y, 2, idx0 + 1)
        y = y0 + (y1 - y0) * w[:, None, :]
        if self.mean is not None:
            y = (y - self.mean.to(x)) / self.std.to(x)
        if lengths is not None:
            valid = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]
            y = torch.where(valid[:, :, None], y, x)
        return y

    def extra_repr(self) -> str:
        return f"bins={self.centers.size}, max_warp={self.max_warp}"


# ---------------------------------------------------------------------------------------------
# speed perturbation
# ---------------------------------------------------------------------------------------------


def _speed_fraction(factor: float) -> Fraction:
    if not factor > 0:
        raise ValueError(f"speed factor must be > 0, got {factor}")
    return Fraction(factor).limit_denominator(1000)


def speed_perturb(x: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Kaldi/sox ``speed``: play ``x`` ``factor`` times faster (pitch and tempo change together).

    The signal is resampled from ``sample_rate`` to ``sample_rate / factor`` and the result is read
    at ``sample_rate`` again, so the duration becomes ``duration / factor``. The ratio is used as a
    small fraction (0.9 -> 9/10) so the polyphase filter stays small.
    """
    from .audio import resample

    x = np.asarray(x, dtype=np.float32)
    frac = _speed_fraction(factor)
    if frac == 1:
        return x.copy()
    # resampling orig -> new with orig/new = factor gives N / factor samples
    return np.asarray(resample(x, frac.numerator, frac.denominator), dtype=np.float32)


def speed_prefix(factor: float) -> str:
    """``0.9 -> "sp0.9-"`` (utterance and speaker id prefix of a speed-perturbed copy)."""
    return f"sp{factor:g}-"


def speed_perturb_datadir(src_dir: str | os.PathLike, dst_dir: str | os.PathLike,
                          factors: Sequence[float] = (0.9, 1.0, 1.1), sample_rate: int | None = None) -> Path:
    """Kaldi-style speed-perturbed copy of a data dir (like ``perturb_data_dir_speed_3way.sh``).

    For each factor != 1 every utterance is perturbed and written to ``dst_dir/wav/sp<f>-<utt>.wav``
    (segments are honoured: each segment becomes its own wav) with utterance and speaker ids
    prefixed ``sp<f>-`` and the same text. Factor 1.0 keeps the original ids and audio (original
    wav.scp/segments entries when the source has no segments; extracted wavs otherwise). Writes
    ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt`` and ``utt2dur``. Wavs already there are reused,
    so an interrupted run can be restarted.
    """
    from tqdm import tqdm

    from .audio import SAMPLE_RATE, audio_info, write_wav
    from .data.datadir import DataDir

    sample_rate = sample_rate or SAMPLE_RATE
    src = DataDir.load(src_dir)
    dst = Path(dst_dir)
    wav_dir = dst / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(wav_dir)
    has_segments = src.segments is not None
    wav_scp: dict[str, str] = {}
    text: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    utt2dur: dict[str, float] = {}
    src_durs = None
    for factor in factors:
        frac = _speed_fraction(factor)
        prefix = "" if frac == 1 else speed_prefix(factor)
        for utt in tqdm(src.utt_ids, desc=f"speed {factor:g}", unit="utt", leave=False):
            new = prefix + utt
            if new in utt2spk:
                raise ValueError(f"speed factors {list(factors)} give the same id {new!r} twice")
            utt2spk[new] = prefix + src.utt2spk[utt]
            if src.text is not None and utt in src.text:
                text[new] = src.text[utt]
            if frac == 1 and not has_segments:
                if src_durs is None:
                    src_durs = src.durations()
                wav_scp[new] = str(src.wav_path(utt).resolve())
                utt2dur[new] = float(src_durs[utt])
                continue
            out = (wav_dir / f"{_safe_name(new)}.wav").resolve()
            if not out.is_file():
                x = src.audio(utt, sample_rate=sample_rate)
                write_wav(out, speed_perturb(x, sample_rate, float(frac)), sample_rate)
            wav_scp[new] = str(out)
            utt2dur[new] = float(audio_info(out).duration)
    DataDir(path=dst, wav_scp=wav_scp, utt2spk=utt2spk, text=text if src.text is not None else None,
            utt2dur=utt2dur).save(dst)
    return dst


# ---------------------------------------------------------------------------------------------
# feature dump
# ---------------------------------------------------------------------------------------------


def _safe_name(utt: str) -> str:
    """Utterance id -> file name (path separators and leading dots escaped)."""
    name = utt.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    return "%2E" + name[1:] if name.startswith(".") else name


_WORKER: dict[str, Any] = {}


def _worker_init(data_dir: str, cfg_dict: dict, dump_dir: str, want_stats: bool, threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(threads)
    from .data.datadir import DataDir

    cfg = FeatureConfig(**cfg_dict)
    _WORKER.update(dd=DataDir.load(data_dir), cfg=cfg, extractor=FeatureExtractor(cfg).eval(),
                   dump=Path(dump_dir), stats=want_stats)


def _load_existing(path: Path, dim: int) -> np.ndarray | None:
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if arr.ndim != 2 or arr.shape[1] != dim or arr.dtype != np.float32 or not np.isfinite(arr).all():
        return None  # damaged: computed again
    return arr


def _process(utt: str) -> tuple:
    """-> (utt, status, num_frames, sum, sumsq, error) with status computed/skipped/error."""
    w = _WORKER
    cfg: FeatureConfig = w["cfg"]
    path = w["dump"] / f"{_safe_name(utt)}.npy"
    feats = _load_existing(path, cfg.dim) if path.is_file() else None
    status = "skipped"
    if feats is None:
        try:
            audio = w["dd"].audio(utt, sample_rate=cfg.sample_rate)
        except ASRError as e:
            return utt, "error", 0, None, None, f"{utt}: {e}"
        feats = w["extractor"].compute(audio)
        if feats.shape[0] == 0:
            return utt, "error", 0, None, None, (
                f"{utt}: {len(audio)} samples is shorter than one {cfg.win_length}-sample window")
        atomic_save(path, lambda f: np.save(f, feats))
        status = "computed"
    s = ss = None
    if w["stats"]:
        f64 = np.asarray(feats, dtype=np.float64)
        s, ss = f64.sum(0), (f64 * f64).sum(0)
    return utt, status, int(feats.shape[0]), s, ss, None


def _save_config_if_changed(cfg: FeatureConfig, path: Path) -> None:
    try:
        if path.is_file() and load_feature_config(path) == cfg:
            return
    except ConfigError:
        pass
    config_mod.save(cfg, path)


def extract_features(data_dir: str | os.PathLike, dump_dir: str | os.PathLike, cfg: FeatureConfig | None = None,
                     cmvn_out: str | os.PathLike | None = None, nj: int = 1, progress: bool = True) -> dict:
    """Compute features for every utterance of a data dir into ``dump_dir/<utt>.npy``.

    Writes float32 ``(T, F)`` un-normalised features (atomically, one file per utterance), then
    ``data_dir/feats.scp`` (utt -> absolute npy path), ``data_dir/utt2num_frames``,
    ``data_dir/feats.yaml`` (the config; also copied to ``dump_dir/feats.yaml``) and, if
    ``cmvn_out`` is given, global CMVN stats over all frames. Utterances whose npy already exists
    are skipped (resumable) but still counted in the stats. A dump dir made with a different config
    is refused. ``nj`` > 1 runs that many worker processes with one torch thread each.
    Returns ``{"utterances", "computed", "skipped", "frames", "dump_dir"}``.
    """
    from tqdm import tqdm

    from .data.datadir import DataDir, write_kaldi_map

    cfg = cfg or FeatureConfig()
    data_dir = Path(data_dir)
    dump = Path(dump_dir).resolve()
    dd = DataDir.load(data_dir)
    utts = list(dd.utt_ids)
    if not utts:
        raise DataDirError(f"{data_dir}: no utterances to extract features for")
    dump.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(dump)
    clean_stale_temps(data_dir, ["feats.scp", "utt2num_frames", "feats.yaml"])  # a killed run's partial writes
    if cmvn_out is not None:
        clean_stale_temps(Path(cmvn_out).parent, [Path(cmvn_out).name])
    cfg_yaml = dump / "feats.yaml"
    if cfg_yaml.is_file():
        old = load_feature_config(cfg_yaml)
        if old != cfg:
            raise ConfigError(
                f"{dump} holds features made with a different config ({cfg_yaml}: {old}); "
                f"use another --dump dir or delete it")
    _save_config_if_changed(cfg, cfg_yaml)
    want_stats = cmvn_out is not None
    cfg_dict = dataclasses.asdict(cfg)
    acc = CMVNAccumulator(cfg.dim)
    frames: dict[str, int] = {}
    counts = {"computed": 0, "skipped": 0}
    errors: list[str] = []

    def handle(res: tuple) -> None:
        utt, status, n, s, ss, err = res
        if status == "error":
            errors.append(err)
            return
        counts[status] += 1
        frames[utt] = n
        if want_stats:
            acc.add_stats(s, ss, n)

    nj = max(1, min(int(nj), len(utts)))
    bar = tqdm(total=len(utts), desc="extract-features", unit="utt", disable=not progress)
    if nj == 1:
        _worker_init(str(data_dir), cfg_dict, str(dump), want_stats, None)
        try:
            for utt in utts:
                handle(_process(utt))
                bar.update()
        finally:
            _WORKER.clear()
    else:
        import multiprocessing as mp

        # fork (Linux): workers inherit the imported modules and start at once; torch's at-fork
        # handlers keep the child's thread pools usable. spawn elsewhere.
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        chunk = max(1, min(16, len(utts) // (nj * 4)))
        with ctx.Pool(nj, initializer=_worker_init,
                      initargs=(str(data_dir), cfg_dict, str(dump), want_stats, 1)) as pool:
            for res in pool.imap_unordered(_process, utts, chunksize=chunk):
                handle(res)
                bar.update()
    bar.close()
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise AudioError(f"feature extraction failed for {len(errors)} utterance(s) of {data_dir} "
                         f"(fix or remove them from the data dir, then rerun; finished ones are kept):\n  "
                         f"{shown}{more}")
    write_kaldi_map(data_dir / "feats.scp", {u: str(dump / f"{_safe_name(u)}.npy") for u in utts})
    write_kaldi_map(data_dir / "utt2num_frames", {u: str(frames[u]) for u in utts})
    _save_config_if_changed(cfg, data_dir / "feats.yaml")
    if want_stats:
        acc.compute().save(cmvn_out)
    return {"utterances": len(utts), "computed": counts["computed"], "skipped": counts["skipped"],
            "frames": int(sum(frames.values())), "dump_dir": str(dump)}
