"""The fixed arrays of the feature computation: analysis windows, mel filterbanks, the DCT.

:func:`feature_matrices` returns exactly the arrays the torch extractor multiplies with; ``asr
export`` saves them into a runtime package for the numpy front end (:mod:`asr.runtime.features`).
The Slaney filterbank is numpy; the Hann/Povey windows, the DCT and Kaldi's mel banks come from
torch/torchaudio (imported when called, so importing this module needs no torch) so that both front
ends use the very values torchaudio computes.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from .config import FeatureConfig


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


def hann_window(win_length: int) -> np.ndarray:
    """(win_length,) float64 periodic Hann window, ``torch.hann_window(periodic=True)``'s values."""
    import torch

    return torch.hann_window(win_length, periodic=True, dtype=torch.float64).numpy()


def dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_mfcc) orthonormal DCT-II, ``torchaudio.functional.create_dct(norm="ortho")`` in float64."""
    import torch
    import torchaudio

    return torchaudio.functional.create_dct(n_mfcc, n_mels, "ortho").to(torch.float64).numpy()


def _kaldi_mel_banks(cfg: FeatureConfig):
    """torchaudio's Kaldi mel banks for the extractor's FFT size: ((n_mels, fft_size//2), (n_mels, 1)) float32."""
    from torchaudio.compliance import kaldi

    return kaldi.get_mel_banks(cfg.n_mels, cfg.fft_size, float(cfg.sample_rate), cfg.fmin, cfg.f_max,
                               100.0, -500.0, 1.0)


def feature_matrices(cfg: FeatureConfig) -> dict[str, np.ndarray]:
    """The exact arrays the extractor uses (see :mod:`asr.features` for the algorithm).

    fbank/mfcc arrays are float64 (the extractor computes in float64: do the same for parity);
    kaldi_fbank arrays are float32 (torchaudio's Kaldi code computes in float32).

    fbank/mfcc: ``window`` (n_fft,) zero-padded periodic Hann; ``mel`` (n_fft//2+1, n_mels);
    mfcc also ``dct`` (n_mels, n_mfcc). kaldi_fbank: ``window`` (win_length,) Povey window;
    ``mel`` (padded//2+1, n_mels) Kaldi mel banks (last row, the Nyquist bin, is zero).
    """
    if cfg.kind == "kaldi_fbank":
        import torch

        banks, _ = _kaldi_mel_banks(cfg)
        banks = torch.nn.functional.pad(banks, (0, 1))
        # exactly torchaudio's float32 Povey window
        window = torch.hann_window(cfg.win_length, periodic=False, dtype=torch.float32).pow(0.85)
        return {"window": window.numpy(), "mel": banks.T.contiguous().float().numpy()}
    left = (cfg.n_fft - cfg.win_length) // 2
    full = np.zeros(cfg.n_fft, dtype=np.float64)
    full[left:left + cfg.win_length] = hann_window(cfg.win_length)
    out = {"window": full, "mel": slaney_mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.f_max)}
    if cfg.kind == "mfcc":
        out["dct"] = dct_matrix(cfg.n_mfcc, cfg.n_mels)
    return out


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
        _, centers = _kaldi_mel_banks(cfg)
        return centers.double().numpy().reshape(-1)
    raise ConfigError(f"feature kind {cfg.kind!r} has no frequency axis to warp (cepstral coefficients); "
                      "frequency warping needs fbank or kaldi_fbank features")
