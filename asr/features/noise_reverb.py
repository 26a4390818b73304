"""On-the-fly waveform augmentation for training: synthetic room reverberation and additive noise.

The generators are the machine-made corpus's own (:mod:`asr.synthesis.augment`: ``synthetic_rir``,
``pink_noise``, ``loop_to``); this module only draws their parameters per training utterance and
applies them to a batch of waveforms, keeping each utterance's length and level:

1. with probability ``reverb_prob``: convolution with a synthetic room impulse response (RT60 drawn
   from ``rt60_range`` s, direct-to-reverberant ratio from ``drr_range`` dB), cut to the dry length
   and scaled back to the dry RMS;
2. with probability ``noise_prob``: white, pink or babble noise (kind drawn from ``noise_types``) at
   an SNR drawn from ``snr_range`` dB against the (reverberated) speech, over the whole utterance.
   Babble is the sum of up to ``babble_utts`` OTHER utterances of the same batch, each at unit RMS
   and looped to the length; a batch of one utterance gets pink noise instead.

Every draw comes from a generator seeded by ``(seed, epoch, crc32(utt))``: the same utterance in the
same epoch gets the same room and noise whatever the worker, batch position or resume, and another
epoch another one. (Babble depends on the batch's other utterances, which the batch plan fixes for a
given seed, epoch and number of DDP ranks.) Features dumped to disk cannot get this (it needs the
waveform): with dumped features the trainer has only SpecAugment and VTLP.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import signal
from scipy.fft import next_fast_len

from ..errors import ConfigError
from ..synthesis.augment import NOISE_TYPES, loop_to, pink_noise, synthetic_rir


@dataclass(frozen=True)
class WaveAugment:
    """Parameters of the on-the-fly waveform augmentation (built from the train config)."""

    sample_rate: int = 16000  # rate of the waveforms it is applied to (Hz)
    noise_prob: float = 0.0  # probability of additive noise per utterance
    snr_range: tuple[float, float] = (5.0, 25.0)  # SNR of the added noise against the speech (dB)
    noise_types: tuple[str, ...] = NOISE_TYPES  # kinds drawn with equal probability
    babble_utts: int = 3  # babble: at most this many other utterances of the batch, summed
    reverb_prob: float = 0.0  # probability of a synthetic room response per utterance
    rt60_range: tuple[float, float] = (0.2, 0.8)  # reverberation time of the room (s)
    drr_range: tuple[float, float] = (0.0, 12.0)  # direct-to-reverberant ratio (dB)
    seed: int = 1  # base seed (the trainer's seed)

    def __post_init__(self) -> None:
        check_wave_augment_options(self.noise_prob, self.snr_range, self.noise_types, self.babble_utts,
                                   self.reverb_prob, self.rt60_range, self.drr_range)

    @property
    def active(self) -> bool:
        return self.noise_prob > 0 or self.reverb_prob > 0

    def draw(self, epoch: int, utt: str) -> dict:
        """What is done to ``utt`` in ``epoch``: ``{"seed"[, "rt60", "drr"][, "noise", "snr"]}``."""
        rng = np.random.default_rng([int(self.seed), int(epoch), zlib.crc32(utt.encode("utf-8"))])
        p: dict = {"seed": int(rng.integers(0, 2**31 - 1))}
        if rng.random() < self.reverb_prob:
            p["rt60"] = float(rng.uniform(*self.rt60_range))
            p["drr"] = float(rng.uniform(*self.drr_range))
        if rng.random() < self.noise_prob:
            p["noise"] = str(self.noise_types[int(rng.integers(0, len(self.noise_types)))])
            p["snr"] = float(rng.uniform(*self.snr_range))
        return p

    def apply(self, x: np.ndarray, params: dict, others: Sequence[np.ndarray] = ()) -> np.ndarray:
        """``x`` (float, mono) augmented as ``params`` says; ``others``: babble sources. float32, same length."""
        rng = np.random.default_rng(int(params["seed"]))
        y = np.asarray(x, dtype=np.float64)
        if y.size == 0:
            return y.astype(np.float32)
        if "rt60" in params:
            h = synthetic_rir(self.sample_rate, float(params["rt60"]), float(params["drr"]), rng)
            dry_rms = np.sqrt(np.mean(y**2))
            y = signal.fftconvolve(y, h)[: y.size]
            y *= dry_rms / (np.sqrt(np.mean(y**2)) + 1e-12)
        if "noise" in params:
            noise = self._noise(params["noise"], y.size, rng, others)
            speech_power = float(np.mean(y**2)) + 1e-12
            noise_power = float(np.mean(noise**2)) + 1e-12
            y = y + np.sqrt(speech_power / (noise_power * 10 ** (float(params["snr"]) / 10))) * noise
        return y.astype(np.float32)

    def _noise(self, kind: str, n: int, rng: np.random.Generator, others: Sequence[np.ndarray]) -> np.ndarray:
        sources = [o for o in others if len(o) > 0] if kind == "babble" else []
        if sources:
            pick = rng.permutation(len(sources))[: self.babble_utts]
            noise = np.zeros(n)
            for j in pick:
                s = loop_to(np.asarray(sources[int(j)], dtype=np.float64), n, rng)
                noise += s / (np.sqrt(np.mean(s**2)) + 1e-12)
            return noise
        if kind in ("pink", "babble"):
            # at an FFT-friendly length, then cut (an FFT of a length with large prime factors is slow)
            return pink_noise(next_fast_len(n, real=True), rng)[:n]
        return rng.standard_normal(n)

    def batch(self, waves: Sequence[np.ndarray], utts: Sequence[str], epoch: int) -> list[np.ndarray]:
        """The waveforms of one training batch, each augmented with its own draw; babble for an
        utterance comes from the batch's other (clean) utterances."""
        out = []
        for i, (x, utt) in enumerate(zip(waves, utts)):
            p = self.draw(epoch, utt)
            if "rt60" not in p and "noise" not in p:
                out.append(np.asarray(x, dtype=np.float32))
                continue
            out.append(self.apply(x, p, [w for j, w in enumerate(waves) if j != i]))
        return out


def check_wave_augment_options(noise_prob: float, snr_range: Sequence[float], noise_types: Sequence[str],
                               babble_utts: int, reverb_prob: float, rt60_range: Sequence[float],
                               drr_range: Sequence[float]) -> None:
    """ConfigError naming each bad option (shared by :class:`WaveAugment` and the train config)."""
    problems = []
    for name, p in (("noise_prob", noise_prob), ("reverb_prob", reverb_prob)):
        if not 0.0 <= p <= 1.0:
            problems.append(f"{name} must be within [0, 1], got {p}")
    for name, r in (("snr_range", snr_range), ("rt60_range", rt60_range), ("drr_range", drr_range)):
        if len(r) != 2 or r[0] > r[1]:
            problems.append(f"{name} must be [low, high] with low <= high, got {list(r)}")
    if len(rt60_range) == 2 and rt60_range[0] <= 0:
        problems.append(f"rt60_range must be > 0 s, got {list(rt60_range)}")
    bad = [t for t in noise_types if t not in NOISE_TYPES]
    if bad or not noise_types:
        problems.append(f"noise_types must be a non-empty list of {list(NOISE_TYPES)}, got {list(noise_types)}")
    if babble_utts < 1:
        problems.append(f"babble_utts must be >= 1, got {babble_utts}")
    if problems:
        raise ConfigError("; ".join(problems))
