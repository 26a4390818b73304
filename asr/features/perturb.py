"""Speed perturbation (Kaldi/sox ``speed``): of a waveform, and 3-way of a whole data dir.

A data dir's perturbed copies get ``sp<factor>-`` prefixed utterance and speaker ids, as Kaldi's
``perturb_data_dir_speed_3way.sh`` names them.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic import clean_stale_temps
from ..audio import SAMPLE_RATE, audio_info, resample, write_wav
from ..data.datadir import DataDir
from ..errors import ConfigError
from .dump import utt_file_name


def _speed_fraction(factor: float) -> Fraction:
    if not factor > 0:
        raise ConfigError(f"speed factor must be > 0, got {factor}")
    return Fraction(factor).limit_denominator(1000)


def speed_perturb(x: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Kaldi/sox ``speed``: play ``x`` ``factor`` times faster (pitch and tempo change together).

    The signal is resampled from ``sample_rate`` to ``sample_rate / factor`` and the result is read
    at ``sample_rate`` again, so the duration becomes ``duration / factor``. The ratio is used as a
    small fraction (0.9 -> 9/10) so the polyphase filter stays small.
    """
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
                raise ConfigError(f"speed factors {list(factors)} give the same id {new!r} twice")
            utt2spk[new] = prefix + src.utt2spk[utt]
            if src.text is not None and utt in src.text:
                text[new] = src.text[utt]
            if frac == 1 and not has_segments:
                if src_durs is None:
                    src_durs = src.durations()
                wav_scp[new] = str(src.wav_path(utt).resolve())
                utt2dur[new] = float(src_durs[utt])
                continue
            out = (wav_dir / f"{utt_file_name(new)}.wav").resolve()
            if not out.is_file():
                x = src.audio(utt, sample_rate=sample_rate)
                write_wav(out, speed_perturb(x, sample_rate, float(frac)), sample_rate)
            wav_scp[new] = str(out)
            utt2dur[new] = float(audio_info(out).duration)
    DataDir(path=dst, wav_scp=wav_scp, utt2spk=utt2spk, text=text if src.text is not None else None,
            utt2dur=utt2dur).save(dst)
    return dst


# ---------------------------------------------------------------------------------------------
# the command: asr speed-perturb --data data/train --out data/train_sp [--factors 0.9,1.0,1.1]


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="source data dir (wav.scp, utt2spk, text, [segments])")
    parser.add_argument("--out", required=True, help="the perturbed copy (its wavs go to OUT/wav/)")
    parser.add_argument("--factors", default="0.9,1.0,1.1", help="comma-separated speed factors (1.0 keeps the originals)")
    parser.add_argument("--sample-rate", type=int, default=None, help="rate of the written wavs (default 16000)")


def run(args) -> int:
    import sys

    try:
        factors = [float(f) for f in args.factors.split(",") if f.strip()]
    except ValueError:
        raise ConfigError(f"--factors {args.factors!r}: expected comma-separated numbers, e.g. 0.9,1.0,1.1") from None
    if not factors:
        raise ConfigError("--factors is empty: give e.g. 0.9,1.0,1.1")
    out = speed_perturb_datadir(args.data, args.out, factors, sample_rate=args.sample_rate)
    n = len(DataDir.load(out))
    print(f"speed-perturb: {args.data} x {len(factors)} factors ({', '.join(f'{f:g}' for f in factors)}) -> "
          f"{out} ({n} utterances)", file=sys.stderr)
    return 0
