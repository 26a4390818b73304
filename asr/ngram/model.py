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

import errno
import math
import os
import warnings
import zipfile
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from ..atomic import atomic_path
from ..decode.hashing import _hash_find, _hash_insert, njit
from ..errors import ASRError
from .arpa import BOS, EOS, UNK, ArpaGrams, read_arpa

LN10 = math.log(10.0)
KENLM_UNK_LOG10 = -100.0  # KenLM's log10 p(<unk>) when the file has no <unk> unigram
CACHE_VERSION = 1  # of the .NAME.npz table cache beside an ARPA file (bump when NgramTables change)


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


_TABLE_ARRAYS = ("h_keys", "h_vals", "logp", "backoff", "has_p", "suffix", "order")  # NgramTables' arrays


def cache_path(path: str | os.PathLike) -> Path:
    """The table cache of the ARPA file ``path``: ``.NAME.npz`` beside it (hidden, so package
    manifests leave it out)."""
    path = Path(path)
    return path.with_name(f".{path.name}.npz")


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

    filled = False  # the tables hold the whole LM (asr.ngram.binary.KenlmLM: a cache the search fills)

    def __init__(self, orders: Sequence[ArpaGrams], source: str = "<memory>"):
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
        tables = NgramTables(
            h_keys=h_keys, h_vals=h_vals, logp=np.asarray(logp, np.float64), backoff=np.asarray(backoff, np.float64),
            has_p=np.asarray(has_p, bool), suffix=suffix, order=np.asarray(order, np.int32), W=W,
            max_order=len(orders), unk=vocab[UNK],
            unk_logp=KENLM_UNK_LOG10 * LN10 if unk_line is None or not has_p[unk_line] else 0.0)
        bos_state = ids.get((vocab[BOS],), 0) if BOS in vocab else 0
        if EOS not in vocab:
            raise ASRError(f"{source}: the LM has no </s> unigram; this is not a sentence LM")
        self._set(list(vocab), tables, bos_state, source)

    def _set(self, words: list[str], tables: NgramTables, bos_state: int, source: str) -> None:
        self.source = source
        self.words = words
        self.vocab = {w: i for i, w in enumerate(words)}
        self.order = int(tables.max_order)
        self.tables = tables
        self.bos_state = int(bos_state)
        self.eos = self.vocab[EOS]

    @classmethod
    def load(cls, path: str | os.PathLike, progress: bool = False, cache: bool = True) -> "NgramLM":
        """The LM of the ARPA file ``path``. With ``cache``, its tables are kept in ``.NAME.npz``
        beside it (written atomically, tagged with the ARPA file's sha256 and :data:`CACHE_VERSION`)
        and read from there while they match: parsing a large ARPA file takes seconds, the
        cache a fraction of that. A folder that cannot be written to just gets no cache."""
        path = Path(path)
        if not cache:
            return cls(read_arpa(path, progress=progress), source=str(path))
        if not path.is_file():
            raise ASRError(f"{path}: no such ARPA file")
        from ..package import sha256

        digest, cpath = sha256(path), cache_path(path)
        lm = cls._read_cache(cpath, digest, str(path))
        if lm is None:
            lm = cls(read_arpa(path, progress=progress), source=str(path))
            lm._write_cache(cpath, digest)
        return lm

    @classmethod
    def _read_cache(cls, cpath: Path, digest: str, source: str) -> "NgramLM | None":
        """The LM in the cache file ``cpath`` if it was made from the ARPA file of sha256 ``digest``
        by this cache format; else None (a missing, stale, damaged or foreign cache is rebuilt)."""
        if not cpath.is_file():
            return None
        try:
            with np.load(cpath, allow_pickle=False) as z:
                if str(z["sha256"]) != digest or int(z["version"]) != CACHE_VERSION:
                    return None
                arrays = {f: z[f] for f in _TABLE_ARRAYS}
                W, max_order, unk, bos_state = (int(v) for v in z["ints"])
                unk_logp = float(z["unk_logp"])
                words = z["words"].tolist()
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None
        if len(words) != W:
            return None
        lm = cls.__new__(cls)
        lm._set(words, NgramTables(**arrays, W=W, max_order=max_order, unk=unk, unk_logp=unk_logp), bos_state, source)
        return lm

    def _write_cache(self, cpath: Path, digest: str) -> None:
        t = self.tables
        try:
            with atomic_path(cpath) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, sha256=np.str_(digest), version=np.int64(CACHE_VERSION),
                             ints=np.asarray([t.W, t.max_order, t.unk, self.bos_state], np.int64),
                             unk_logp=np.float64(t.unk_logp), words=np.asarray(self.words, dtype=np.str_),
                             **{f: getattr(t, f) for f in _TABLE_ARRAYS})
        except OSError as e:  # no cache: the next load parses the ARPA file again
            if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):  # (a read-only folder: quietly)
                warnings.warn(f"{cpath}: cannot write the n-gram table cache ({e}); loading stays slow")

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


def load_ngram(path: str | os.PathLike, progress: bool = False):
    """The n-gram LM at ``path``: an ARPA text file (``.arpa``, or ``.arpa.gz``) as an
    :class:`NgramLM`, or a KenLM binary file (``build_binary`` output, any name) as an
    :class:`asr.ngram.binary.KenlmLM` (needs the kenlm module)."""
    from .binary import KenlmLM, is_kenlm_binary

    path = Path(path)
    if is_kenlm_binary(path):
        return KenlmLM(path)
    return NgramLM.load(path, progress=progress)
