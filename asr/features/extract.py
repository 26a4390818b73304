"""The torch feature extractor: waveform -> fbank / MFCC / Kaldi fbank (CPU or CUDA, batched).

The algorithm of each kind is written out in :mod:`asr.features`; the numpy front end of the
runtime (:mod:`asr.runtime.features`) computes the same with :func:`~asr.features.matrices.feature_matrices`.
"""
from __future__ import annotations

import numpy as np
import torch

from .config import KALDI_INT16_SCALE, KALDI_PREEMPH, FeatureConfig, num_frames
from .matrices import dct_matrix, hann_window, slaney_mel_filterbank


def _kaldi_ms(samples: int, sr: int) -> float:
    # torchaudio computes int(sr * ms * 0.001); nudge so float rounding cannot lose a sample
    return (samples + 1e-3) * 1000.0 / sr


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
            self.register_buffer("window", torch.from_numpy(hann_window(cfg.win_length)))
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
                self.register_buffer("dct", torch.from_numpy(dct_matrix(cfg.n_mfcc, cfg.n_mels)))

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
            preemphasis_coefficient=KALDI_PREEMPH,
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
