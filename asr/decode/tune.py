"""``asr tune-lm-weight``: choose the LM weight alpha and word bonus beta on a dev set.

Emissions of the dev set are computed once; then coordinate search over a grid (alpha with the
current beta, then beta with the best alpha, repeated until nothing changes) minimises dev WER
(ties broken by CER). A best value on the edge of its grid means the optimum may lie outside it, so
the grid is extended past that edge, one step at a time, while that keeps improving (at most
``max_extend`` steps per edge; alpha never below 0). The chosen values, with the grid and every
tried point, are written into the package's ``decode.yaml`` (method beam) and ``tune_lm.json``,
and package.json is re-hashed.
Only dev data is used: never tune on test.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from .. import config as config_mod
from ..atomic import atomic_write_json
from ..errors import ModelPackageError

ALPHAS = (0.0, 0.2, 0.35, 0.5, 0.7, 0.9, 1.2)
BETAS = (-1.0, 0.0, 0.5, 1.0, 2.0, 3.0)


def tune(model, data_dir: Path, alphas=ALPHAS, betas=BETAS, max_utts: int = 300,
         rounds: int = 2, progress: bool = True, max_extend: int = 6) -> dict:
    """Best (alpha, beta) on ``data_dir`` for ``model``, searched with its ``decode_config`` (beam,
    pruning) and its LM."""
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
            hyps = [h[0].text for h in beam_search_batch(lps, model.tokenizer, model.decode_config,
                                                          lm=model.lm if a > 0 else None, alpha=a, beta=b)]
            r = error_rates(refs, hyps)
            tried[(a, b)] = {"alpha": a, "beta": b, "wer": r["wer"], "cer": r["cer"], "seconds": round(time.time() - t0, 1)}
            if progress:
                print(f"  alpha={a:<5} beta={b:<5} WER {100 * r['wer']:.2f}%  CER {100 * r['cer']:.2f}%", flush=True)
        t = tried[(a, b)]
        return (t["wer"], t["cer"])

    best_a, best_b = coordinate_search(evaluate, alphas, betas, rounds=rounds, max_extend=max_extend)
    wer, cer = evaluate(best_a, best_b)
    return {"alpha": best_a, "beta": best_b, "dev_wer": wer, "dev_cer": cer, "beam": model.decode_config.beam,
            "utterances": len(utts), "data": str(data_dir), "tried": list(tried.values())}


def _extend(grid: list[float], best: float, lo_limit: float | None, budget: dict, score) -> float:
    """If ``best`` is an edge of ``grid``, walk past that edge by the grid's last step while
    ``score`` improves, at most ``budget[side]`` more steps on that side (side +1 top, -1 bottom;
    the budget is spent); tried values join ``grid``. Returns the best value."""
    srt = sorted(grid)
    if len(srt) < 2 or srt[0] < best < srt[-1]:
        return best
    side = 1 if best == srt[-1] else -1
    step = side * (srt[-1] - srt[-2] if side > 0 else srt[1] - srt[0])
    while budget[side] > 0:
        nxt = round(best + step, 4)
        if lo_limit is not None and nxt < lo_limit:
            break
        budget[side] -= 1
        grid.append(nxt)
        if not score(nxt) < score(best):
            break
        best = nxt
    return best


def coordinate_search(evaluate, alphas, betas, rounds: int = 2, max_extend: int = 6) -> tuple[float, float]:
    """Minimise ``evaluate(alpha, beta)`` (a sortable score) by coordinate search over the grids,
    extending a grid past an edge that holds the best value (see the module docstring)."""
    alphas, betas = list(alphas), list(betas)
    a_budget, b_budget = {1: max_extend, -1: max_extend}, {1: max_extend, -1: max_extend}
    best_a = 0.5 if 0.5 in alphas else alphas[len(alphas) // 2]
    best_b = 1.0 if 1.0 in betas else betas[0]
    for _ in range(rounds):
        prev = (best_a, best_b)
        fixed_b = best_b
        best_a = min(alphas, key=lambda a: evaluate(a, fixed_b))
        best_a = _extend(alphas, best_a, 0.0, a_budget, lambda a: evaluate(a, fixed_b))
        fixed_a = best_a
        best_b = min(betas, key=lambda b: evaluate(fixed_a, b))
        best_b = _extend(betas, best_b, None, b_budget, lambda b: evaluate(fixed_a, b))
        if (best_a, best_b) == prev:
            break
    return best_a, best_b


def add_arguments(p) -> None:
    p.add_argument("--model", required=True, help="model package dir with lm.pt (asr package --lm-exp)")
    p.add_argument("--data", required=True, help="dev data dir (never the test set)")
    p.add_argument("--beam", type=int, default=10)
    p.add_argument("--max-utts", type=int, default=300, help="tune on at most this many dev utterances")
    p.add_argument("--alphas", default=",".join(map(str, ALPHAS)))
    p.add_argument("--betas", default=",".join(map(str, BETAS)))
    p.add_argument("--max-extend", type=int, default=6,
                   help="grid steps tried past an edge that holds the best value (0: search the grids only)")


def run(args) -> int:
    from ..recognizer import Recognizer
    from ..package import write_manifest
    from .config import DecodeConfig, override

    pkg = Path(args.model)
    if not (pkg / "lm.pt").is_file():
        raise ModelPackageError(f"{pkg} has no lm.pt: package the LM first (asr package ... --lm-exp EXP)")
    base = override(config_mod.load(DecodeConfig, pkg / "decode.yaml"), "command line", method="beam",
                    beam=args.beam, use_lm=True)
    model = Recognizer(pkg, decode=base)
    alphas = tuple(float(a) for a in args.alphas.split(","))
    betas = tuple(float(b) for b in args.betas.split(","))
    print(f"tuning alpha over {alphas} and beta over {betas} on {args.data} (beam {args.beam})")
    res = tune(model, Path(args.data), alphas, betas, max_utts=args.max_utts, max_extend=args.max_extend)
    cfg = dataclasses.replace(base, alpha=res["alpha"], beta=res["beta"])
    config_mod.save(cfg, pkg / "decode.yaml")
    atomic_write_json(pkg / "tune_lm.json", res)
    write_manifest(pkg)
    print(f"best alpha={res['alpha']} beta={res['beta']}: dev WER {100 * res['dev_wer']:.2f}% "
          f"CER {100 * res['dev_cer']:.2f}% -> {pkg / 'decode.yaml'}")
    return 0
