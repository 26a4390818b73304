"""``asr build-ngram``: an interpolated modified Kneser-Ney word n-gram LM from text, as ARPA (and,
with ``--binary``, as a KenLM binary file through KenLM's ``build_binary``: :mod:`asr.ngram.binary`).

No library here writes one (NLTK's KneserNeyInterpolated has no ARPA writer and is plain
Kneser-Ney; KenLM's ``lmplz`` is not shipped with its Python module), so this is the toolkit's own,
following Chen & Goodman (1998) and KenLM's ``lmplz``:

* each line is a sentence ``<s> w1 .. wm </s>``;
* counts ``a``: the raw count at the highest order; at lower orders the continuation count
  N1+(. w1..wn) (distinct words seen before), except n-grams that begin with ``<s>`` (nothing can
  precede them), which keep their raw count;
* three discounts per order from the count-of-counts t1..t4 of ``a``:
  Y = t1 / (t1 + 2 t2), D1 = 1 - 2Y t2/t1, D2 = 2 - 3Y t3/t2, D3+ = 3 - 4Y t4/t3 (``fallback``
  discounts where a t_k is 0 or a D is outside [0, k], as ``lmplz --discount_fallback``);
* interpolation: p(w | h) = (a(h w) - D(a(h w))) / a(h .) + gamma(h) p(w | h[1:]), with
  gamma(h) = (D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .)) / a(h .); the unigrams interpolate with the
  uniform distribution over the vocabulary (every word but ``<s>``, ``<unk>`` included), and
  ``<unk>`` gets only that share;
* ARPA: each n-gram's interpolated log10 p, and as backoff of a history h the weight that makes
  p(. | h) sum to one over the vocabulary: (1 - sum_kept p(w|h)) / (1 - sum_kept p(w|h[1:])),
  which equals gamma(h) when nothing is pruned; ``<s>`` has log10 p -99.
* ``prune``: n-grams of order >= 2 whose raw count is at most ``prune[n-2]`` are dropped (their
  mass goes to the backoff), e.g. ``(0, 1, 1)`` drops singleton 3- and 4-grams, as lmplz
  ``--prune 0 0 1``.

Everything is counted in memory (Python dicts): fine for recipe LM texts of a few million words.
"""
from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import ASRError
from .arpa import BOS, EOS, UNK, ArpaGrams, sentences, write_arpa

FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz --discount_fallback's default


def discounts(count_of_counts: Sequence[int], fallback=FALLBACK_DISCOUNTS) -> tuple[float, float, float]:
    """(D1, D2, D3+) from t1..t4 (Chen & Goodman); ``fallback`` when they are undefined or out of range."""
    t1, t2, t3, t4 = (int(x) for x in count_of_counts[:4])
    if min(t1, t2, t3, t4) <= 0:
        return tuple(fallback)
    y = t1 / (t1 + 2 * t2)
    d = (1 - 2 * y * t2 / t1, 2 - 3 * y * t3 / t2, 3 - 4 * y * t4 / t3)
    if not all(0 <= dk <= k + 1 for k, dk in enumerate(d)):
        return tuple(fallback)
    return d


def count_ngrams(lines: Iterable[Sequence[str]], order: int, progress: bool = False) -> list[Counter]:
    """Raw counts of every n-gram, n = 1..order (index n-1), of the sentences ``<s> words </s>``."""
    raw = [Counter() for _ in range(order)]
    it = lines
    if progress:
        from tqdm import tqdm

        it = tqdm(lines, desc="counting n-grams", unit=" lines")
    for words in it:
        s = [BOS] + list(words) + [EOS]
        for n in range(1, order + 1):
            c = raw[n - 1]
            for i in range(len(s) - n + 1):
                c[tuple(s[i:i + n])] += 1
    return raw


def build_kn(raw: list[Counter], prune: Sequence[int] = (), fallback=FALLBACK_DISCOUNTS,
             progress: bool = False) -> list[ArpaGrams]:
    """The interpolated modified Kneser-Ney model (see the module doc) of the raw counts ``raw``."""
    order = len(raw)
    # adjusted counts
    adj: list[dict] = []
    for n in range(1, order + 1):
        if n == order:
            adj.append(dict(raw[n - 1]))
            continue
        cont: Counter = Counter()
        for g in raw[n]:  # (v w1..wn) -> one more distinct left word of w1..wn
            cont[g[1:]] += 1
        a = {}
        for g, c in raw[n - 1].items():
            if g[0] == BOS:
                a[g] = c
            elif g in cont:
                a[g] = cont[g]
        adj.append(a)
    ds = []
    for n in range(order):
        coc = Counter(min(c, 4) for c in adj[n].values())
        ds.append(discounts([coc[1], coc[2], coc[3], coc[4]], fallback))
    vocab = sorted({g[0] for g in raw[0]} | {UNK})
    n_uniform = len([w for w in vocab if w != BOS])

    def kept(n: int, g: tuple) -> bool:
        return n < 2 or raw[n - 1].get(g, 0) > (prune[n - 2] if n - 2 < len(prune) else 0)

    probs: list[dict] = []  # per order: n-gram -> interpolated p
    backoffs: list[dict] = []  # per order: history n-gram -> backoff weight
    for n in range(1, order + 1):
        a = adj[n - 1]
        d1, d2, d3 = ds[n - 1]
        tot: dict = defaultdict(float)
        nk: dict = defaultdict(lambda: [0, 0, 0])
        for g, c in a.items():
            if g == (BOS,):
                continue  # <s> is never predicted
            h = g[:-1]
            tot[h] += c
            nk[h][min(c, 3) - 1] += 1
        gamma = {h: (d1 * k[0] + d2 * k[1] + d3 * k[2]) / tot[h] for h, k in nk.items()}
        p: dict = {}
        items = a.items()
        if progress:
            from tqdm import tqdm

            items = tqdm(items, desc=f"{n}-gram probabilities", total=len(a))
        for g, c in items:
            if g == (BOS,) or not kept(n, g):
                continue
            h = g[:-1]
            disc = d1 if c == 1 else d2 if c == 2 else d3
            lower = 1.0 / n_uniform if n == 1 else _prob(probs, backoffs, g[1:])
            p[g] = (c - disc) / tot[h] + gamma[h] * lower
        if n == 1:
            p[(UNK,)] = p.get((UNK,), 0.0) + gamma[()] / n_uniform
        probs.append(p)
        backoffs.append({})
        if n > 1:  # the backoff of each history of this order's n-grams
            by_h: dict = defaultdict(list)
            for g in p:
                by_h[g[:-1]].append(g)
            for h, gs in by_h.items():
                num = 1.0 - sum(p[g] for g in gs)
                den = 1.0 - sum(_prob(probs[:-1], backoffs[:-1], g[1:]) for g in gs)
                backoffs[n - 2][h] = max(num, 0.0) / den if den > 0 else 1.0
    out = []
    for n in range(1, order + 1):
        grams = sorted(probs[n - 1]) if n > 1 else sorted(set(probs[0]) | {(BOS,)})
        lp, bo = [], []
        for g in grams:
            lp.append(-99.0 if g == (BOS,) else math.log10(probs[n - 1][g]))
            b = backoffs[n - 1].get(g) if n < order else None
            bo.append(math.log10(b) if b else 0.0)
        out.append(ArpaGrams(n, grams, lp, bo))
    return out


def _prob(probs: list[dict], backoffs: list[dict], g: tuple) -> float:
    """p(g[-1] | g[:-1]) of the (possibly pruned) model of orders len(probs), ARPA back-off rules."""
    n = len(g)
    while True:
        if n <= len(probs):
            p = probs[n - 1].get(g)
            if p is not None:
                return p
        if n == 1:
            return probs[0][(UNK,)]
        bo = backoffs[n - 2].get(g[:-1], 1.0) if n - 1 <= len(backoffs) else 1.0
        # the factor multiplies the rest of the back-off chain
        return bo * _prob(probs, backoffs, g[1:])


def build_arpa(text: Sequence[str | os.PathLike], out: str | os.PathLike, order: int = 4,
               prune: Sequence[int] = (), progress: bool = True) -> dict:
    """Build from the text files ``text`` (one sentence per line, normalised words) and write ``out``."""
    if not 1 <= order <= 6:
        raise ASRError(f"build-ngram --order {order}: must be between 1 and 6")
    paths = [Path(t) for t in text]
    for p in paths:
        if not p.is_file():
            raise ASRError(f"build-ngram: no such text file {p}")

    def lines():
        for p in paths:
            with open(p, encoding="utf-8") as f:
                yield from sentences(f)

    raw = count_ngrams(lines(), order, progress=progress)
    if not raw[0]:
        raise ASRError(f"build-ngram: {', '.join(map(str, paths))} has no words")
    orders = build_kn(raw, prune=prune, progress=progress)
    write_arpa(out, orders)
    return {"order": order, "ngrams": [len(g.grams) for g in orders], "out": str(out)}


def add_arguments(p) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", nargs="+", help="text file(s), one normalised sentence per line")
    src.add_argument("--arpa", default=None,
                     help="an existing ARPA file to convert with --binary (instead of building from --text)")
    p.add_argument("--order", type=int, default=4, help="n-gram order (3 or 4 are usual)")
    p.add_argument("--prune", type=int, nargs="*", default=[],
                   help="per order from 2: drop n-grams with raw count <= this (e.g. 0 1 1: singleton 3/4-grams)")
    p.add_argument("--out", default=None, help="ARPA file to write (with --text)")
    p.add_argument("--binary", default=None,
                   help="also write the LM as a KenLM binary file here (KenLM's build_binary: `asr build-kenlm`)")
    p.add_argument("--binary-type", default="probing", choices=["probing", "trie"],
                   help="KenLM data structure: probing (fastest) or trie (smallest)")
    p.add_argument("--build-binary", default=None, help="KenLM's build_binary program (default: found, see asr build-kenlm)")


def run(args) -> int:
    if args.text is not None:
        if not args.out:
            raise ASRError("build-ngram --text: give the ARPA file to write with --out")
        res = build_arpa(args.text, args.out, order=args.order, prune=args.prune)
        print(f"wrote {res['out']}: order {res['order']}, "
              + ", ".join(f"{n + 1}-grams {c}" for n, c in enumerate(res["ngrams"])))
        arpa = args.out
    else:
        if not args.binary:
            raise ASRError("build-ngram --arpa: give the KenLM binary file to write with --binary")
        arpa = args.arpa
    if args.binary:
        from .binary import write_binary

        write_binary(arpa, args.binary, args.binary_type, args.build_binary)
        print(f"wrote {args.binary}: KenLM {args.binary_type} binary of {arpa}")
    return 0
