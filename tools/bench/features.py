#!/usr/bin/env python3
"""Time our feature extraction (torch, one thread) against librosa on the same ~60 s of audio.

    python tools/bench/features.py [--seconds 60] [--repeats 5] [--audio FILE]

Both sides get the same float32 waveform and the same parameters (conf/features defaults:
n_fft 512, win 400, hop 160, 80 mels from 20 Hz, Slaney scale/norm, centred frames). librosa's
numba code is warmed up first. Each line reports the best of ``--repeats`` runs (robust to other
load on the machine; medians in brackets) and the ratio librosa/ours (> 1 means ours is faster).
Default precision is float64 on CPU (librosa parity ~1e-6); the float32 lines show the faster option. ``kaldi_fbank`` has no librosa counterpart; it is timed
alone. Without ``--audio`` a speech-like synthetic signal is used (the content does not change the
timings of either implementation).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from asr.features import FeatureConfig, FeatureExtractor  # noqa: E402


def synth(seconds: float, sr: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(0)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    phase = 2 * np.pi * np.cumsum(120 + 40 * np.sin(2 * np.pi * 0.7 * t)) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 20)) * 0.05 + 0.003 * rng.standard_normal(n)
    return x.astype(np.float32)


def timeit(fn, repeats: int) -> tuple[float, float]:
    """(best, median) wall time in ms over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1000.0, statistics.median(times) * 1000.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--audio", default=None, help="an audio file to use instead of the synthetic signal")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.audio:
        from asr.audio import read_audio

        x = read_audio(args.audio, 16000)[: int(args.seconds * 16000)]
    else:
        x = synth(args.seconds)
    secs = len(x) / 16000
    import librosa

    t0 = time.perf_counter()
    librosa.feature.melspectrogram(y=x[:16000], sr=16000)  # numba / lazy-import warm-up
    warm = time.perf_counter() - t0
    print(f"audio: {secs:.1f} s at 16 kHz; torch {torch.__version__} ({torch.get_num_threads()} thread), "
          f"librosa {librosa.__version__} (warm-up {warm:.1f} s, excluded); best of {args.repeats} "
          f"(median in brackets)")

    def lib_mel(cfg):
        return librosa.feature.melspectrogram(
            y=x, sr=16000, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
            center=True, pad_mode="constant", n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)

    def lib_fbank(cfg):
        return np.log(np.maximum(lib_mel(cfg), cfg.log_floor)).T

    def lib_mfcc(cfg):
        return librosa.feature.mfcc(S=librosa.power_to_db(lib_mel(cfg), amin=cfg.log_floor, top_db=None),
                                    n_mfcc=cfg.n_mfcc).T

    for kind, lib in (("fbank", lib_fbank), ("mfcc", lib_mfcc), ("kaldi_fbank", None)):
        cfg = FeatureConfig(kind=kind)
        variants = [("", torch.float64)] + ([("float32 ", torch.float32)] if kind != "kaldi_fbank" else [])
        lib_ms = timeit(lambda: lib(cfg), args.repeats) if lib is not None else None
        for tag, dt in variants:
            ext = FeatureExtractor(cfg, dtype=dt)
            ours = timeit(lambda: ext.compute(x), args.repeats)
            rt = secs * 1000.0 / ours[0]
            if lib_ms is None:
                print(f"{kind}: ours {ours[0]:.1f} ms [{ours[1]:.1f}] ({rt:.0f}x real time); no librosa equivalent")
            else:
                label = f"{kind} ({tag.strip()} compute)" if tag else kind
                print(f"{label}: ours {ours[0]:.1f} ms [{ours[1]:.1f}], librosa {lib_ms[0]:.1f} ms [{lib_ms[1]:.1f}], "
                      f"ratio (librosa/ours) {lib_ms[0] / ours[0]:.2f}x  (ours {rt:.0f}x real time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
