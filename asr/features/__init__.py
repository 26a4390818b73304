"""Acoustic features: log-mel filterbank, MFCC, Kaldi fbank; CMVN; SpecAugment/VTLP; speed perturbation; dump.

One job per module:

- :mod:`.config`: :class:`FeatureConfig` (the one frozen feature config, also the runtime's),
  :func:`load_feature_config`, :func:`num_frames`, the Kaldi constants;
- :mod:`.matrices`: windows, mel filterbanks, DCT (:func:`feature_matrices`, :func:`mel_bin_centers`);
- :mod:`.extract`: :class:`FeatureExtractor` (torch; CPU or CUDA, batched);
- :mod:`.cmvn`: :class:`CMVN`, :class:`CMVNAccumulator`, :func:`utterance_cmvn` (numpy; used by
  training and by both recognizers);
- :mod:`.augment`: :class:`SpecAugment`, :class:`FreqWarp` (torch);
- :mod:`.perturb`: :func:`speed_perturb`, :func:`speed_perturb_datadir` (Kaldi 3-way speed perturbation);
- :mod:`.noise_reverb`: :class:`WaveAugment` (on-the-fly noise at an SNR and synthetic room responses
  of training waveforms, seeded per epoch and utterance; numpy);
- :mod:`.dump`: :func:`extract_features` (features of a data dir to ``.npy`` with global CMVN stats;
  resumable) and the ``asr extract-features`` command.

``import asr.features`` (and its config, matrices and cmvn modules) does not import torch; the
torch-based names are loaded on first use.

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
"""
from __future__ import annotations

import importlib

from .cmvn import CMVN, CMVN_STD_FLOOR, CMVNAccumulator, utterance_cmvn
from .config import (
    FEATURE_KINDS,
    KALDI_EPSILON,
    KALDI_INT16_SCALE,
    KALDI_PREEMPH,
    FeatureConfig,
    load_feature_config,
    num_frames,
)
from .matrices import feature_matrices, mel_bin_centers, slaney_mel_filterbank

# name -> submodule, imported on first access (torch, or work not needed to read a config)
_LAZY = {
    "FeatureExtractor": "extract",
    "SpecAugment": "augment",
    "FreqWarp": "augment",
    "speed_perturb": "perturb",
    "speed_perturb_datadir": "perturb",
    "speed_prefix": "perturb",
    "WaveAugment": "noise_reverb",
    "extract_features": "dump",
    "utt_file_name": "dump",
}

__all__ = [
    "FEATURE_KINDS",
    "KALDI_EPSILON",
    "KALDI_INT16_SCALE",
    "KALDI_PREEMPH",
    "FeatureConfig",
    "load_feature_config",
    "num_frames",
    "feature_matrices",
    "mel_bin_centers",
    "slaney_mel_filterbank",
    "CMVN",
    "CMVN_STD_FLOOR",
    "CMVNAccumulator",
    "utterance_cmvn",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
