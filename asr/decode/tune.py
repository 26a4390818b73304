"""``asr tune-lm-weight``: choose the LM weights (alpha, ngram_weight) and word bonus beta on a dev set.

A package with a word n-gram LM (lm.arpa) gets ``ngram_weight`` and beta tuned first, with the LSTM
LM off; then, with lm.pt too, ``alpha`` and beta with the n-gram at its tuned weight, the LSTM LM
fused or rescoring the N-best as the package's ``lstm_mode`` says. The hotwords and the lexicon of the
package's decode.yaml take part in every decode of the search, as they will when it is used.

Emissions of the dev set are computed once; then coordinate search over a grid (alpha with the
current beta, then beta with the best alpha, repeated until nothing changes) minimises dev WER
(ties broken by CER); ``--search local`` scores only the neighbours on the way to the best value
of a line instead of the whole line. A best value on the edge of its grid means the optimum may lie outside it, so
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
         rounds: int = 2, progress: bool = True, max_extend: int = 6, weight: str = "alpha",
         ngram_weight: float | None = None, search: str = "grid") -> dict:
    """Best (weight, beta) on ``data_dir`` for ``model``, searched with its ``decode_config`` (beam,
    pruning) and its LMs. ``weight``: "alpha" (the LSTM LM's; with the n-gram LM at
    ``ngram_weight``, none if None) or "ngram_weight" (the n-gram LM's, the LSTM LM off); the
    result's "alpha" key holds the tuned weight either way."""
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
            if weight == "ngram_weight":
                kw = dict(lm=None, ngram=getattr(model, "ngram", None), ngram_weight=a, use_ngram=True)
            else:
                kw = dict(lm=model.lm if a > 0 else None, alpha=a, use_ngram=ngram_weight is not None,
                          ngram=getattr(model, "ngram", None) if ngram_weight is not None else None,
                          ngram_weight=ngram_weight if ngram_weight is not None else 0.0)
            # the package's hotwords and lexicon are part of the search it will decode with
            hyps = [h[0].text for h in beam_search_batch(lps, model.tokenizer, model.decode_config, beta=b,
                                                         hotwords=model.hotwords, lexicon=model.lexicon, **kw)]
            r = error_rates(refs, hyps)
            tried[(a, b)] = {"alpha": a, "beta": b, "wer": r["wer"], "cer": r["cer"], "seconds": round(time.time() - t0, 1)}
            if progress:
                print(f"  {weight}={a:<5} beta={b:<5} WER {100 * r['wer']:.2f}%  CER {100 * r['cer']:.2f}%", flush=True)
        t = tried[(a, b)]
        return (t["wer"], t["cer"])

    best_a, best_b = coordinate_search(evaluate, alphas, betas, rounds=rounds, max_extend=max_extend, search=search)
    wer, cer = evaluate(best_a, best_b)
    return {"alpha": best_a, "beta": best_b, "dev_wer": wer, "dev_cer": cer, "beam": model.decode_config.beam,
            "utterances": len(utts), "data": str(data_dir), "search": search, "tried": list(tried.values())}


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


def _walk(grid: list[float], start: float, score) -> float:
    """From ``start`` on ``grid``, step to the neighbour that scores better while it does: first
    upwards, and downwards when the first step up does not help. Returns the best value."""
    srt = sorted(grid)
    best = start
    for direction in (1, -1):
        i, moved = srt.index(start), False
        while 0 <= i + direction < len(srt) and score(srt[i + direction]) < score(best):
            i += direction
            best, moved = srt[i], True
        if moved:
            break
    return best


def coordinate_search(evaluate, alphas, betas, rounds: int = 2, max_extend: int = 6,
                      search: str = "grid") -> tuple[float, float]:
    """Minimise ``evaluate(alpha, beta)`` (a sortable score) by coordinate search over the grids,
    extending a grid past an edge that holds the best value (see the module docstring).

    ``search="grid"`` scores every grid value of the line; ``"local"`` walks from the current value
    to better neighbours only (a unimodal WER curve, as the LM weight and word bonus give, needs
    3-4 points per line instead of the whole grid; a noisy curve may stop at a local minimum)."""
    if search not in ("grid", "local"):
        raise ValueError(f"search must be grid or local, got {search!r}")
    alphas, betas = list(alphas), list(betas)
    a_budget, b_budget = {1: max_extend, -1: max_extend}, {1: max_extend, -1: max_extend}
    best_a = 0.5 if 0.5 in alphas else alphas[len(alphas) // 2]
    best_b = 1.0 if 1.0 in betas else betas[0]

    def line(grid, current, score):
        return min(grid, key=score) if search == "grid" else _walk(grid, current, score)

    for _ in range(rounds):
        prev = (best_a, best_b)
        fixed_b = best_b
        best_a = line(alphas, best_a, lambda a: evaluate(a, fixed_b))
        best_a = _extend(alphas, best_a, 0.0, a_budget, lambda a: evaluate(a, fixed_b))
        fixed_a = best_a
        best_b = line(betas, best_b, lambda b: evaluate(fixed_a, b))
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
    p.add_argument("--lstm-mode", choices=("fusion", "rescore"), default=None,
                   help="with an n-gram LM too: the LSTM LM fused per token or rescoring the N-best "
                        "(default: the package's decode.yaml)")
    p.add_argument("--search", choices=("grid", "local"), default="grid",
                   help="grid: every value of a grid line; local: walk from the current value to better "
                        "neighbours only (about half the decodes; may stop at a local minimum)")
    p.add_argument("--max-extend", type=int, default=6,
                   help="grid steps tried past an edge that holds the best value (0: search the grids only)")


def run(args) -> int:
    from ..package import NGRAM_BINARY_FILE, NGRAM_FILE, package_ngram_file, write_manifest
    from ..recognizer import Recognizer
    from .config import DecodeConfig, override

    pkg = Path(args.model)
    has_lstm, has_ngram = (pkg / "lm.pt").is_file(), package_ngram_file(pkg) is not None
    if not has_lstm and not has_ngram:
        raise ModelPackageError(f"{pkg} has neither lm.pt nor {NGRAM_FILE} / {NGRAM_BINARY_FILE}: package an LM first "
                                "(asr package ... --lm-exp EXP and/or --arpa LM.arpa)")
    base = override(config_mod.load(DecodeConfig, pkg / "decode.yaml"), "command line", method="beam",
                    beam=args.beam, use_lm=True, use_ngram=True, lstm_mode=args.lstm_mode)
    model = Recognizer(pkg, decode=base)
    alphas = tuple(float(a) for a in args.alphas.split(","))
    betas = tuple(float(b) for b in args.betas.split(","))
    cfg, res = base, {}
    if has_ngram:
        print(f"tuning ngram_weight over {alphas} and beta over {betas} on {args.data} (beam {args.beam}, "
              "no LSTM LM)")
        res_ng = tune(model, Path(args.data), alphas, betas, max_utts=args.max_utts, max_extend=args.max_extend,
                      weight="ngram_weight", search=args.search)
        cfg = dataclasses.replace(cfg, ngram_weight=res_ng["alpha"], beta=res_ng["beta"], use_lm=False)
        res = {"ngram": res_ng, "ngram_weight": res_ng["alpha"], "beta": res_ng["beta"],
               "dev_wer": res_ng["dev_wer"], "dev_cer": res_ng["dev_cer"]}
    if has_lstm:
        print(f"tuning alpha over {alphas} and beta over {betas} on {args.data} (beam {args.beam}"
              + (f", n-gram at {cfg.ngram_weight}, LSTM {cfg.lstm_mode})" if has_ngram else ")"))
        res_l = tune(model, Path(args.data), alphas, betas, max_utts=args.max_utts, max_extend=args.max_extend,
                     ngram_weight=cfg.ngram_weight if has_ngram else None, search=args.search)
        if not has_ngram or (res_l["dev_wer"], res_l["dev_cer"]) < (res["dev_wer"], res["dev_cer"]):
            cfg = dataclasses.replace(cfg, alpha=res_l["alpha"], beta=res_l["beta"], use_lm=True)
            res.update(dev_wer=res_l["dev_wer"], dev_cer=res_l["dev_cer"], beta=res_l["beta"])
        res.update(lstm=res_l, alpha=res_l["alpha"])
        if not has_ngram:
            res = res_l
    res["chosen"] = {"alpha": cfg.alpha, "beta": cfg.beta, "ngram_weight": cfg.ngram_weight, "use_lm": cfg.use_lm,
                     "lstm_mode": cfg.lstm_mode}
    config_mod.save(cfg, pkg / "decode.yaml")
    atomic_write_json(pkg / "tune_lm.json", res)
    write_manifest(pkg)
    print(f"best alpha={cfg.alpha} ngram_weight={cfg.ngram_weight} beta={cfg.beta} use_lm={cfg.use_lm}: dev WER "
          f"{100 * res['dev_wer']:.2f}% CER {100 * res['dev_cer']:.2f}% -> {pkg / 'decode.yaml'}")
    return 0
