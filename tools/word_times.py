#!/usr/bin/env python3
"""How close are word start/end times to the truth? Words synthesised alone, joined with known silences.

    nice -n 10 python tools/word_times.py --model recipes/tts_en/exp/model [--gap 0.3] [--voice en-us]

Each word of a few sentences is spoken alone by espeak-ng (:func:`asr.synthesis.synth.synth_espeak`),
trimmed to its sound (|x| > 1e-3) and joined with ``--gap`` seconds of silence (0.2 s before and
after), so every word's true span is known. The recognizer (the package's decode settings unless
``--method``) transcribes with ``word_timestamps=True``; hypothesis words that jiwer aligns to a
reference word (equal or substituted) are compared with it: mean signed error and the share within
100 ms, for starts and ends, and for ends of words with and without a following word (the last word
of a sentence has no separator to end it; see asr/decode/align.py). One thread.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

SENTENCES = ["the weather is nice today", "please open the door for me", "my brother bought a new car",
             "we will meet at the station tomorrow", "she reads a book every night",
             "all that glitters is not gold", "they walked along the river after dinner"]


def spoken_alone(words: list[str], voice: str, speed: int, gap: float, sr: int, workdir: Path):
    """(audio at ``sr``, [(start, end) seconds]) of ``words`` spoken one by one with ``gap`` between."""
    import numpy as np

    from asr.audio import resample
    from asr.synthesis.synth import synth_espeak

    pad = np.zeros(int(0.2 * sr), np.float32)
    parts, spans, pos = [pad], [], len(pad)
    for i, w in enumerate(words):
        x, rate = synth_espeak(voice, w, workdir / f"w{i}.wav", rate=speed)
        x = resample(np.asarray(x, np.float32), rate, sr)
        on = np.flatnonzero(np.abs(x) > 1e-3)
        x = x[on[0]:on[-1] + 1]
        if i:
            parts.append(np.zeros(int(gap * sr), np.float32))
            pos += int(gap * sr)
        spans.append((pos / sr, (pos + len(x)) / sr))
        parts.append(x)
        pos += len(x)
    parts.append(pad)
    return np.concatenate(parts), spans


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model package dir")
    p.add_argument("--method", choices=("greedy", "beam"), default=None, help="default: the package's")
    p.add_argument("--gap", type=float, default=0.3, help="seconds of silence between words")
    p.add_argument("--voice", default="en-us", help="espeak-ng voice")
    p.add_argument("--speed", type=int, default=150, help="espeak-ng words per minute")
    a = p.parse_args(argv)

    import jiwer
    import numpy as np

    from asr.recognizer import Recognizer

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    rec = Recognizer(a.model, threads=1, **({"method": a.method} if a.method else {}))
    err = {"start": [], "end_inner": [], "end_last": []}
    n_ref = 0
    with tempfile.TemporaryDirectory() as tmp:
        for k, sentence in enumerate(SENTENCES):
            words = sentence.split()
            d = Path(tmp) / str(k)
            d.mkdir()
            audio, spans = spoken_alone(words, a.voice, a.speed, a.gap, rec.sample_rate, d)
            t = rec.transcribe(audio, rec.sample_rate, word_timestamps=True)
            n_ref += len(words)
            out = jiwer.process_words(sentence, " ".join(w.word for w in t.words) or "-")
            for c in out.alignments[0]:
                if c.type not in ("equal", "substitute"):
                    continue
                for r, h in zip(range(c.ref_start_idx, c.ref_end_idx), range(c.hyp_start_idx, c.hyp_end_idx)):
                    w, (s, e) = t.words[h], spans[r]
                    err["start"].append(w.start - s)
                    err["end_inner" if h < len(t.words) - 1 else "end_last"].append(w.end - e)
    res = {"model": str(a.model), "method": rec.decode_config.method, "words": n_ref,
           "matched": len(err["start"]), "gap_s": a.gap}
    for k, v in err.items():
        v = np.asarray(v)
        if len(v):
            res[k] = {"n": len(v), "mean_error_s": round(float(v.mean()), 3),
                      "max_abs_error_s": round(float(np.abs(v).max()), 3),
                      "within_100ms": round(float(np.mean(np.abs(v) <= 0.1)), 3)}
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
