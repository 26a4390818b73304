"""KenLM binary n-gram LMs: written by KenLM's ``build_binary`` (probing or trie), scored through
the ``kenlm`` python module.

The kenlm module scores a binary file but cannot list its n-grams, so the beam search cannot get
the whole LM as :class:`~asr.ngram.model.NgramTables` as it does from an ARPA file. A
:class:`KenlmLM` instead gives it a *cache* in the same form, filled on demand: every
(history state, word) pair scored so far is an entry of the tables, keyed ``state * W + word`` as
an ARPA n-gram is, whose ``logp`` is kenlm's ``ln p(word | state)`` (back-off included) and whose
``suffix`` is the id of kenlm's next state (``order`` = the model's, so that
:func:`~asr.ngram.model.ngram_score` returns that suffix as the next state). States are ids >= 1,
each a row of its own with no probability (``has_p`` False), and map to the ``kenlm.State``
objects kept here; id 0 is no state, so a pair not in the cache scores
:data:`MISS_LOGP` and returns state 0 (the search fills the pairs it needs before it scores them:
:func:`asr.decode.beam._ngram_misses`, :meth:`KenlmLM.fill`).

The vocabulary (word ids, and the partial-word scores of the beam search's vocabulary trie) is
read from the strings ``build_binary`` stores at the end of the file (it does by default; a file
without them is refused), in KenLM's own word-index order (``<unk>`` = 0); unigram log-probs come
from kenlm (each word after the null context).
"""
from __future__ import annotations

import math
import mmap
import os
import struct
import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic import atomic_path
from ..decode.hashing import _hash_find, _hash_insert, njit
from ..errors import ASRError
from .arpa import EOS, UNK
from .model import LN10, NgramTables

MAGIC = b"mmap lm http://kheafield.com/code"  # how every KenLM binary file begins
_MAGIC_V5 = MAGIC + b" format version 5\n\0"  # the version this reader (and kenlm 0.2-0.3) knows
_FIXED_AT = 88  # offset of the FixedWidthParameters (after the 88-byte Sanity header, lm/binary_format.cc)
_COUNTS_AT = _FIXED_AT + 20  # offset of the n-gram counts (uint64 per order)
MODEL_TYPES = ("probing", "trie")  # build_binary's data structures this toolkit writes
MISS_LOGP = -1e30  # what a (state, word) pair not in the cache scores (never used by a search that fills first)


def is_kenlm_binary(path: str | os.PathLike) -> bool:
    """The file begins as a KenLM binary file does."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def binary_info(path: str | os.PathLike) -> tuple[list[int], bool]:
    """``(counts per order, has the vocabulary strings)`` from the header of a KenLM binary file."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(_COUNTS_AT + 8 * 7)
    if not head.startswith(MAGIC):
        raise ASRError(f"{path}: not a KenLM binary file (no KenLM header)")
    if not head.startswith(_MAGIC_V5):
        raise ASRError(f"{path}: a KenLM binary file of another format version than 5; rebuild it with "
                       "`asr build-ngram --arpa LM.arpa --binary OUT` (the kenlm module reads version 5)")
    if head.startswith(b"mmap lm http://kheafield.com/code incomplete"):
        raise ASRError(f"{path}: build_binary did not finish writing this file; build it again")
    order, _, _, has_vocab, _ = struct.unpack_from("<B3xfIB3xI", head, _FIXED_AT)
    if not 1 <= order <= 6 or len(head) < _COUNTS_AT + 8 * order:
        raise ASRError(f"{path}: a damaged KenLM binary header (order {order})")
    return list(struct.unpack_from(f"<{order}Q", head, _COUNTS_AT)), bool(has_vocab)


def read_binary_vocab(path: str | os.PathLike) -> list[str]:
    """The words of a KenLM binary file in KenLM's word-index order (``<unk>`` first), from the
    NUL-terminated strings ``build_binary`` writes at the end of the file."""
    path = Path(path)
    counts, has_vocab = binary_info(path)
    if not has_vocab:
        raise ASRError(f"{path}: this KenLM binary holds no vocabulary strings, which the beam search needs "
                       "(to spell the LM's words); rebuild it with build_binary's default settings")
    size = path.stat().st_size
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        n_min = counts[0]  # the unigrams; KenLM adds <unk> when the ARPA file had none
        k = min(size, 16 * (n_min + 2))
        while True:  # read back from the end until the tail holds every word
            parts = mm[size - k:].split(b"\0")
            if len(parts) >= n_min + 3 or k == size:
                break
            k = min(size, 2 * k)
    if parts and parts[-1] == b"":
        parts = parts[:-1]
    for n in (n_min, n_min + 1):  # <unk> comes first, right after the (binary) search tables
        if len(parts) >= n and parts[-n].endswith(UNK.encode()):
            try:
                return [UNK] + [p.decode("utf-8") for p in parts[-n + 1:]]
            except UnicodeDecodeError:
                break
    raise ASRError(f"{path}: the vocabulary strings at the end of this KenLM binary are damaged or missing "
                   "(a truncated copy?); copy or build the file again")


def write_binary(arpa: str | os.PathLike, out: str | os.PathLike, model_type: str = "probing",
                 build_binary: str | os.PathLike | None = None) -> Path:
    """KenLM's ``build_binary [model_type] ARPA OUT`` (written atomically): the binary of ``arpa``."""
    from .kenlm_build import find_build_binary

    if model_type not in MODEL_TYPES:
        raise ASRError(f"KenLM binary type {model_type!r}: must be one of {', '.join(MODEL_TYPES)}")
    arpa, out = Path(arpa), Path(out)
    if not arpa.is_file():
        raise ASRError(f"{arpa}: no such ARPA file")
    exe = find_build_binary(build_binary)
    with atomic_path(out) as tmp:
        r = subprocess.run([str(exe), model_type, str(arpa), str(tmp)], capture_output=True, text=True)
        if r.returncode != 0:
            raise ASRError(f"{exe} {model_type} {arpa} failed (exit {r.returncode}):\n{r.stderr.strip()[-2000:]}")
    return out


def _import_kenlm(what: str):
    try:
        import kenlm
    except ImportError:
        raise ASRError(f"{what} is a KenLM binary n-gram LM, which needs the kenlm python module: "
                       "pip install kenlm (or use the ARPA file instead)") from None
    return kenlm


@njit(cache=True)
def _insert_all(h_keys, h_vals, keys, vals):
    for i in range(keys.shape[0]):
        _hash_insert(h_keys, h_vals, keys[i], vals[i])


class KenlmLM:
    """A KenLM binary file scored by the kenlm module, with the interface of
    :class:`~asr.ngram.model.NgramLM` the beam search uses; :attr:`tables` is the on-demand cache
    described in the module doc (``filled`` = True: the search must call :meth:`fill` for the pairs
    it lacks)."""

    filled = True  # the tables are a cache the search fills (NgramLM: False, they are the whole LM)

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        if not path.is_file():
            raise ASRError(f"{path}: no such KenLM binary file")
        kenlm = _import_kenlm(str(path))
        self.source = str(path)
        self._counts = binary_info(path)[0]
        self.words = read_binary_vocab(path)
        try:
            self._model = kenlm.Model(str(path))
        except (OSError, RuntimeError) as e:
            raise ASRError(f"{path}: the kenlm module cannot load it ({e})") from None
        self._kenlm = kenlm
        self.vocab = {w: i for i, w in enumerate(self.words)}
        if EOS not in self.vocab:
            raise ASRError(f"{path}: the LM has no </s>; this is not a sentence LM")
        self.order = int(self._model.order)
        self.eos = self.vocab[EOS]
        self._W = len(self.words)
        self._unk = self.vocab.get(UNK, 0)
        self._states: dict = {}  # state id (its row) -> kenlm.State
        self._state_ids: dict = {}  # kenlm.State -> state id
        self._n = 1  # rows used (row 0: no state)
        self._alloc(1024)
        bos = kenlm.State()
        self._model.BeginSentenceWrite(bos)
        self.bos_state = self._state_id(bos)
        self._null = kenlm.State()
        self._model.NullContextWrite(self._null)

    def _alloc(self, cap: int) -> None:
        old = getattr(self, "_arrays", None)
        arrays = {"logp": np.zeros(cap), "backoff": np.zeros(cap), "has_p": np.zeros(cap, bool),
                  "suffix": np.zeros(cap, np.int32), "order": np.zeros(cap, np.int32)}
        if old is not None:
            for k, a in arrays.items():
                a[: self._n] = old[k][: self._n]
        hcap = 1 << int(math.ceil(math.log2(4 * cap)))
        h_keys, h_vals = np.full(hcap, -1, np.int64), np.zeros(hcap, np.int32)
        if old is not None:
            used = self.tables.h_keys >= 0
            _insert_all(h_keys, h_vals, self.tables.h_keys[used], self.tables.h_vals[used])
        self._arrays = arrays
        self.tables = NgramTables(h_keys=h_keys, h_vals=h_vals, **arrays, W=self._W, max_order=self.order,
                                  unk=self._unk, unk_logp=MISS_LOGP)

    def _row(self) -> int:
        if self._n >= self._arrays["logp"].shape[0]:
            self._alloc(2 * self._arrays["logp"].shape[0])
        i = self._n
        self._n += 1
        return i

    def _state_id(self, state) -> int:
        i = self._state_ids.get(state)
        if i is None:  # a row of its own: no probability, backoff 0, suffix 0 (a miss from it ends at "no state")
            i = self._row()
            self._state_ids[state] = i
            self._states[i] = state
        return i

    def fill(self, keys) -> None:
        """Score the pairs ``keys`` (``state * W + word``) with kenlm and add them to :attr:`tables`."""
        W, t = self._W, self.tables
        for key in keys:
            key = int(key)
            if _hash_find(t.h_keys, t.h_vals, np.int64(key)) >= 0:
                continue  # (asked twice)
            h, w = divmod(key, W)
            out = self._kenlm.State()
            lp = self._model.BaseScore(self._states[h], self.words[w], out) * LN10
            nxt = self._state_id(out)
            i = self._row()
            a = self._arrays
            a["logp"][i], a["has_p"][i], a["suffix"][i], a["order"][i] = lp, True, nxt, self.order
            t = self.tables  # (a new row may have grown them)
            _hash_insert(t.h_keys, t.h_vals, np.int64(key), i)

    @property
    def num_ngrams(self) -> int:
        return sum(self._counts)

    def word_id(self, w: str) -> int:
        return self.vocab.get(w, self._unk)

    def unigram_logp(self) -> np.ndarray:
        """ln p(w) of every word id (after the null context, i.e. its unigram)."""
        out = np.empty(self._W)
        st = self._kenlm.State()
        for i, w in enumerate(self.words):
            out[i] = self._model.BaseScore(self._null, w, st) * LN10
        return out

    def score_words(self, words: Sequence[str], bos: bool = True, eos: bool = True) -> float:
        """log10 p of a word sequence, as :meth:`NgramLM.score_words` (through the cache)."""
        from .model import ngram_score

        state = self.bos_state if bos else self._state_id(self._null)
        total = 0.0
        for w in list(words) + ([EOS] if eos else []):
            key = state * self._W + self.word_id(w)
            self.fill([key])
            s, state = ngram_score(self.tables, state, self.word_id(w))
            total += s
        return total / LN10

