"""Feature-level training augmentation (torch, on batches): SpecAugment masking and VTLP warping.

:class:`SpecAugment` masks frequency bands and time spans (Park et al. 2019); :class:`FreqWarp`
warps the frequency axis of log-mel features per utterance (vocal-tract-length perturbation;
:func:`asr.features.matrices.mel_bin_centers` gives the bin centres it needs).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..errors import ConfigError


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
