"""A back-off n-gram LM as compact numpy tables, scored by numba code the beam search calls.

Every n-gram of the file gets an id (0 = the empty history); an open-addressing hash maps
``history_id * W + word_id`` to the id of the n-gram ``history + word`` (W = vocabulary size).
Per id: ``logp`` and ``backoff`` (natural log), ``order`` and ``suffix`` (the id of its longest
proper suffix that is in the model). A search state is the id of the history it keeps (at most
order - 1 words). Scoring a word backs off along ``suffix`` as ARPA semantics say::

    log p(w | h) = logp(h w)                      if h w is in the model
                 = backoff(h) + log p(w | h[1:])  otherwise

A history line that an n-gram needs but the file lacks (allowed by the format) is added with
backoff 0 and no probability of its own (``has_p`` False).

Word ids: the file's vocabulary; a word outside it is scored as ``<unk>`` (the file's unigram, or
log10 -100 when it has none, as KenLM does), and the caller adds its OOV offset.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from ..decode.hashing import _hash_find, _hash_insert, njit
from ..errors import ASRError
from .arpa import BOS, EOS, UNK, ArpaGrams, read_arpa

LN10 = math.log(10.0)
KENLM_UNK_LOG10 = -100.0  # KenLM's log10 p(<unk>) when the file has no <unk> unigram


class NgramTables(NamedTuple):
    """The arrays (and the few numbers) numba code scores with."""

    h_keys: np.ndarray  # int64 history_id * W + word_id, -1 = empty slot
    h_vals: np.ndarray  # int32 n-gram id
    logp: np.ndarray  # float64 ln p(w | h) of each n-gram
    backoff: np.ndarray  # float64 ln backoff of each n-gram as a history
    has_p: np.ndarray  # bool: the n-gram has a probability (False: a history line the file lacked)
    suffix: np.ndarray  # int32 id of the longest proper suffix in the model (0 = empty history)
    order: np.ndarray  # int32 words in the n-gram (0 for the empty history)
    W: int  # vocabulary size
    max_order: int  # the model's order N
    unk: int  # word id of <unk>
    unk_logp: float  # ln p(<unk>) as a unigram when the file has none (else unused)


@njit(cache=True)
def _build_hash(hist, word, W, h_keys, h_vals):
    for i in range(1, hist.shape[0]):
        _hash_insert(h_keys, h_vals, np.int64(hist[i]) * W + word[i], i)


@njit(cache=True)
def ngram_score(ng, state, w):
    """``(ln p(w | state), next state)`` of word id ``w`` after history ``state`` (``ng`` = NgramTables)."""
    score = 0.0
    ctx = state
    while True:
        i = _hash_find(ng.h_keys, ng.h_vals, np.int64(ctx) * ng.W + w)
        if i >= 0 and ng.has_p[i]:
            score += ng.logp[i]
            nxt = i if ng.order[i] < ng.max_order else ng.suffix[i]
            return score, nxt
        if ctx == 0:  # w has no unigram: only <unk> without a line of its own gets here
            return score + ng.unk_logp, 0
        score += ng.backoff[ctx]
        ctx = ng.suffix[ctx]


class NgramLM:
    """A word n-gram LM read from an ARPA file: its vocabulary and :class:`NgramTables`."""

    def __init__(self, orders: Sequence[ArpaGrams], source: str = "<memory>"):
        self.source = source
        vocab: dict[str, int] = {}
        for words in orders[0].grams:
            vocab.setdefault(words[0], len(vocab))
        if UNK not in vocab:
            vocab[UNK] = len(vocab)
        W = len(vocab)
        ids: dict[tuple[int, ...], int] = {(): 0}
        hist, word, logp, backoff, has_p, order = [0], [0], [0.0], [0.0], [False], [0]

        def add(key: tuple[int, ...], lp: float, bo: float, real: bool) -> int:
            h = ids.get(key[:-1])
            if h is None:  # a history the file lacks: add it (backoff 0, no probability)
                h = add(key[:-1], 0.0, 0.0, False)
            i = len(hist)
            ids[key] = i
            hist.append(h)
            word.append(key[-1])
            logp.append(lp)
            backoff.append(bo)
            has_p.append(real)
            order.append(len(key))
            return i

        for g in orders:
            for words, lp, bo in zip(g.grams, g.logp, g.backoff):
                try:
                    key = tuple(vocab[w] for w in words)
                except KeyError as e:
                    raise ASRError(f"{source}: the {g.order}-gram {' '.join(words)!r} has the word {e.args[0]!r}, "
                                   "which has no unigram; this is not a well-formed ARPA file") from None
                if key in ids:
                    if has_p[ids[key]]:
                        raise ASRError(f"{source}: the {g.order}-gram {' '.join(words)!r} appears twice")
                    i = ids[key]
                    logp[i], backoff[i], has_p[i] = lp * LN10, bo * LN10, True
                    continue
                add(key, lp * LN10, bo * LN10, True)
        n = len(hist)
        suffix = np.zeros(n, np.int32)
        for key, i in ids.items():  # longest proper suffix in the model
            for k in range(1, len(key) + 1):
                j = ids.get(key[k:])
                if j is not None:
                    suffix[i] = j
                    break
        hcap = 1 << int(math.ceil(math.log2(2 * n + 2)))
        h_keys = np.full(hcap, -1, np.int64)
        h_vals = np.zeros(hcap, np.int32)
        _build_hash(np.asarray(hist, np.int32), np.asarray(word, np.int32), np.int64(W), h_keys, h_vals)
        unk_line = ids.get((vocab[UNK],))
        self.vocab = vocab
        self.words = list(vocab)
        self.order = len(orders)
        self.tables = NgramTables(
            h_keys=h_keys, h_vals=h_vals, logp=np.asarray(logp, np.float64), backoff=np.asarray(backoff, np.float64),
            has_p=np.asarray(has_p, bool), suffix=suffix, order=np.asarray(order, np.int32), W=W,
            max_order=len(orders), unk=vocab[UNK],
            unk_logp=KENLM_UNK_LOG10 * LN10 if unk_line is None or not has_p[unk_line] else 0.0)
        self.bos_state = ids.get((vocab[BOS],), 0) if BOS in vocab else 0
        self.eos = vocab.get(EOS, -1)
        if self.eos < 0:
            raise ASRError(f"{source}: the LM has no </s> unigram; this is not a sentence LM")

    @classmethod
    def load(cls, path: str | os.PathLike, progress: bool = False) -> "NgramLM":
        return cls(read_arpa(path, progress=progress), source=str(path))

    @property
    def num_ngrams(self) -> int:
        return int(self.tables.has_p.sum())

    def word_id(self, w: str) -> int:
        return self.vocab.get(w, self.tables.unk)

    def unigram_logp(self) -> np.ndarray:
        """ln p(w) of every word id (the unigram line; -inf where there is none)."""
        out = np.full(self.tables.W, -np.inf)
        t = self.tables
        for w in range(t.W):
            i = _hash_find(t.h_keys, t.h_vals, np.int64(w))
            if i >= 0 and t.has_p[i]:
                out[w] = t.logp[i]
        return out

    def score_words(self, words: Sequence[str], bos: bool = True, eos: bool = True) -> float:
        """log10 p of a word sequence (``<s>`` history first, ``</s>`` last when asked), as
        ``kenlm.Model.score`` gives it."""
        state = self.bos_state if bos else 0
        total = 0.0
        for w in list(words) + ([EOS] if eos else []):
            s, state = ngram_score(self.tables, state, self.word_id(w))
            total += s
        return total / LN10


def load_ngram(path: str | os.PathLike, progress: bool = False) -> NgramLM:
    """The n-gram LM at ``path``: an ARPA text file (``.arpa``, or ``.arpa.gz``)."""
    path = Path(path)
    return NgramLM.load(path, progress=progress)
