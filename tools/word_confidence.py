#!/usr/bin/env python3
"""Do word confidences tell right words from wrong ones? Measured on a data dir with a model package.

    nice -n 10 python tools/word_confidence.py --model recipes/tts_en/exp/model \\
        --data recipes/tts_en/data/test [--method greedy|beam] [--limit N] [--json OUT.json]

Each utterance is decoded by the one recognizer (the package's decode settings unless
``--method`` is given) and its best hypothesis force-aligned (:func:`asr.decode.align.align_words`).
Hypothesis words are labelled with jiwer's alignment to the reference: a word in an ``equal``
chunk is right, a substituted or inserted one wrong. Reported: the mean confidence of right and of
wrong words and the ROC AUC (probability that a random right word has a higher confidence than a
random wrong one; 0.5 = no information), for the toolkit's definition (``mean_peak``: mean over the
word's tokens of the token's peak frame posterior) and alternatives computed from the same
alignment: ``min_peak`` / ``geo_peak`` (minimum / geometric mean of the token peaks),
``mean_frames`` (arithmetic mean of P(aligned label) over the word's token frames) and
``geo_all`` (geometric mean over every frame from the word's start to its end, blanks included). One thread (torch and onnxruntime).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")


def auc(pos, neg) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count one half)."""
    import numpy as np

    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if not len(pos) or not len(neg):
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sv = allv[order]
    i = 0
    while i < len(sv):  # average ranks of ties
        j = i
        while j + 1 < len(sv) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def word_labels(ref: str, hyp: str) -> list[bool]:
    """For each hypothesis word: True if jiwer aligns it to an equal reference word."""
    import jiwer

    words = hyp.split()
    right = [False] * len(words)
    if not words or not ref.split():
        return right
    out = jiwer.process_words(ref, hyp)
    for chunk in out.alignments[0]:
        if chunk.type == "equal":
            for k in range(chunk.hyp_start_idx, chunk.hyp_end_idx):
                right[k] = True
    return right


def variants(lp, tokens, tokenizer) -> list[dict]:
    """The three confidence definitions of each word of ``tokens``."""
    import numpy as np

    from asr.decode.align import forced_align, word_token_ranges

    al = forced_align(lp, tokens, tokenizer.blank_id)
    post = np.exp(lp[np.arange(len(lp)), al.labels])
    out = []
    for a, b in word_token_ranges(tokens, tokenizer):
        spans = al.spans[a:b]
        peaks = [np.exp(lp[s:e, t].max()) for t, (s, e) in zip(tokens[a:b], spans)]
        frames = np.concatenate([np.arange(s, e) for s, e in spans])
        s0, e0 = int(spans[0, 0]), int(spans[-1, 1])
        out.append({"mean_peak": float(np.mean(peaks)), "min_peak": float(min(peaks)),
                    "geo_peak": float(np.exp(np.mean(np.log(np.maximum(peaks, 1e-30))))),
                    "mean_frames": float(post[frames].mean()),
                    "geo_all": float(np.exp(np.log(np.maximum(post[s0:e0], 1e-30)).mean()))})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model package dir")
    p.add_argument("--data", required=True, help="data dir with wav.scp (or feats.scp) and text")
    p.add_argument("--method", choices=("greedy", "beam"), default=None, help="default: the package's")
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx"))
    p.add_argument("--limit", type=int, default=None, help="first N utterances only")
    p.add_argument("--json", default=None, help="also write the figures here")
    a = p.parse_args(argv)

    import numpy as np
    from tqdm import tqdm

    from asr.data.datadir import read_kaldi_map
    from asr.decode.cli import load_features
    from asr.recognizer import Recognizer
    from asr.text import normalize_text

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    rec = Recognizer(a.model, backend=a.backend, threads=1, **({"method": a.method} if a.method else {}))
    data = Path(a.data)
    refs = read_kaldi_map(data / "text")
    utts = sorted(refs)[: a.limit]
    feats = load_features(rec, data, utts)
    lps = rec.emissions(feats)
    names = ("mean_peak", "min_peak", "geo_peak", "mean_frames", "geo_all")
    conf: dict[str, dict[str, list]] = {k: {"right": [], "wrong": []} for k in names}
    lib = []
    n_right = n_wrong = 0
    for u, lp in tqdm(list(zip(utts, lps)), desc="decode + align", unit="utt"):
        hyps, words = rec.decode_words([lp])[0]
        hyp = hyps[0] if hyps else None
        if hyp is None or not words:
            continue
        labels = word_labels(normalize_text(refs[u]), " ".join(w.word for w in words))
        for w, v, ok in zip(words, variants(lp, list(hyp.tokens), rec.tokenizer), labels):
            lib.append(abs(w.confidence - v["mean_peak"]))
            for k, x in v.items():
                conf[k]["right" if ok else "wrong"].append(x)
            n_right += ok
            n_wrong += not ok
    assert max(lib, default=0.0) < 1e-5, "the library's confidence is not mean_peak"
    res = {"model": str(a.model), "data": str(data), "utterances": len(utts), "method": rec.decode_config.method,
           "right_words": n_right, "wrong_words": n_wrong, "definitions": {}}
    for k, d in conf.items():
        res["definitions"][k] = {"mean_right": round(float(np.mean(d["right"])), 4) if d["right"] else None,
                                 "mean_wrong": round(float(np.mean(d["wrong"])), 4) if d["wrong"] else None,
                                 "auc": round(auc(d["right"], d["wrong"]), 4)}
    print(json.dumps(res, indent=1))
    if a.json:
        from asr.atomic import atomic_write_json

        atomic_write_json(Path(a.json), res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
