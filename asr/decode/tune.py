"""``asr tune-lm-weight``: choose the LM weight alpha and word bonus beta on a dev set.

Emissions of the dev set are computed once; then coordinate search over a grid (alpha with the
current beta, then beta with the best alpha, repeated until nothing changes) minimises dev WER
(ties broken by CER). The chosen values, with the grid and every tried point, are written into the
package's ``decode.yaml`` (method beam) and ``tune_lm.json``, and package.json is re-hashed.
Only dev data is used: never tune on test.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from .. import config as config_mod
from ..atomic import atomic_write_json
from ..errors import ModelPackageError

ALPHAS = (0.0, 0.2, 0.35, 0.5, 0.7, 0.9, 1.2)
BETAS = (-1.0, 0.0, 0.5, 1.0, 2.0, 3.0)


def tune(model, data_dir: Path, alphas=ALPHAS, betas=BETAS, beam: int = 10, max_utts: int = 300,
         rounds: int = 2, progress: bool = True) -> dict:
    from ..data.datadir import read_kaldi_map
    from ..score import error_rates
    from .beam import beam_search_batch
    from .cli import load_features

    text = read_kaldi_map(data_dir / "text")
    utts = sorted(text)
    if len(utts) > max_utts:  # evenly spaced subset keeps every speaker represented
        utts = [utts[i] for i in np.linspace(0, len(utts) - 1, max_utts).round().astype(int)]
    lps = model.emissions(load_features(model, data_dir, utts))
    refs = [text[u] for u in utts]
    tried: dict[tuple[float, float], dict] = {}

    def evaluate(a: float, b: float) -> tuple[float, float]:
        if (a, b) not in tried:
            t0 = time.time()
            hyps = [h[0].text for h in beam_search_batch(lps, tokenizer=model.tokenizer, beam=beam,
                                                          lm=model.lm if a > 0 else None, alpha=a, beta=b)]
            r = error_rates(refs, hyps)
            tried[(a, b)] = {"alpha": a, "beta": b, "wer": r["wer"], "cer": r["cer"], "seconds": round(time.time() - t0, 1)}
            if progress:
                print(f"  alpha={a:<5} beta={b:<5} WER {100 * r['wer']:.2f}%  CER {100 * r['cer']:.2f}%", flush=True)
        t = tried[(a, b)]
        return (t["wer"], t["cer"])

    best_a, best_b = 0.5 if 0.5 in alphas else alphas[len(alphas) // 2], 1.0 if 1.0 in betas else betas[0]
    for _ in range(rounds):
        prev = (best_a, best_b)
        best_a = min(alphas, key=lambda a: evaluate(a, best_b))
        best_b = min(betas, key=lambda b: evaluate(best_a, b))
        if (best_a, best_b) == prev:
            break
    wer, cer = evaluate(best_a, best_b)
    return {"alpha": best_a, "beta": best_b, "dev_wer": wer, "dev_cer": cer, "beam": beam,
            "utterances": len(utts), "data": str(data_dir), "tried": list(tried.values())}


def add_arguments(p) -> None:
    p.add_argument("--model", required=True, help="model package dir with lm.pt (asr package --lm-exp)")
    p.add_argument("--data", required=True, help="dev data dir (never the test set)")
    p.add_argument("--beam", type=int, default=10)
    p.add_argument("--max-utts", type=int, default=300, help="tune on at most this many dev utterances")
    p.add_argument("--alphas", default=",".join(map(str, ALPHAS)))
    p.add_argument("--betas", default=",".join(map(str, BETAS)))


def run(args) -> int:
    from ..api import Model
    from ..package import write_manifest
    from .config import DecodeConfig

    pkg = Path(args.model)
    if not (pkg / "lm.pt").is_file():
        raise ModelPackageError(f"{pkg} has no lm.pt: package the LM first (asr package ... --lm-exp EXP)")
    base = config_mod.load(DecodeConfig, pkg / "decode.yaml")
    model = Model(pkg, decode=dataclasses.replace(base, method="beam", beam=args.beam, use_lm=True))
    alphas = tuple(float(a) for a in args.alphas.split(","))
    betas = tuple(float(b) for b in args.betas.split(","))
    print(f"tuning alpha over {alphas} and beta over {betas} on {args.data} (beam {args.beam})")
    res = tune(model, Path(args.data), alphas, betas, beam=args.beam, max_utts=args.max_utts)
    cfg = dataclasses.replace(base, method="beam", beam=args.beam, alpha=res["alpha"], beta=res["beta"], use_lm=True)
    config_mod.save(cfg, pkg / "decode.yaml")
    atomic_write_json(pkg / "tune_lm.json", res)
    write_manifest(pkg)
    print(f"best alpha={res['alpha']} beta={res['beta']}: dev WER {100 * res['dev_wer']:.2f}% "
          f"CER {100 * res['dev_cer']:.2f}% -> {pkg / 'decode.yaml'}")
    return 0
