"""CTC prefix beam search with LSTM-LM shallow fusion, lexicon constraint and hotword boosting.

Score of a prefix ``y`` (a collapsed, blank-free token sequence)::

    score(y) = log P_ctc(y | x) + alpha * log P_lm(y) + beta * |words(y)| + hotword bonus

``log P_ctc`` is the CTC prefix probability (sum over alignments, kept as the usual blank / non-blank
pair ``pb``, ``pnb``). The LM is a token (character or BPE) LM: every emitted token is scored, the
word separator included, and at the end ``alpha * log P_lm(</s> | y)`` is added (``</s>`` = id 0).

Speed: prefixes are integer node ids in a trie (parent, token) with an open-addressing hash
``(parent, token) -> node``, so a prefix that leaves the beam and comes back keeps its id and its
cached LM output. The frame loop is one numba kernel (``cache=True``: compiled once per machine,
~10 s, then loaded from ``__pycache__`` in ~1 s; ``warmup()`` does it up front). Without an LM the
kernel runs the whole utterance in one call. Per frame, the stay candidates (blank / repeat) give a
lower bound of the score needed to survive; an extension whose upper bound (LM log-probs are <= 0)
is below it is never created, and its prefix needs no LM call - exact pruning, results unchanged.
With an LM the kernel returns when a frame needs LM output for prefixes that have none; Python
scores *all* of them in one batched ``lm.score_batch`` call (at most one LM forward per frame) and
resumes. Frames whose blank probability exceeds ``blank_skip_threshold`` only propagate the beam (no
new prefixes, no LM call); each frame considers at most ``token_prune_topk`` tokens whose log-prob
is at least ``prune_threshold``; candidates more than ``beam_threshold`` below the best are dropped.

LM interface (``asr.models.lm.TorchLMScorer``; an onnxruntime scorer implements the same)::

    lm.initial_state() -> state                       # state before <s>
    lm.score_batch(states: list, tokens: np.ndarray (N,) int64) -> (log_probs np (N, V), new_states)

``score_batch`` consumes ``tokens[i]`` in ``states[i]`` and returns the log-distribution of the next
token. The search feeds ``<s>`` (= blank id 0) first, so it never needs to know what a state is.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import ASRError

try:  # numba ships with librosa; without it the same code runs (slowly) as plain Python
    if os.environ.get("ASR_NO_NUMBA"):
        raise ImportError
    from numba import njit
except ImportError:  # pragma: no cover
    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda f: f

NEG_INF = -math.inf
_INITIAL_FRAMES = 4096  # node storage starts at beam * min(T, this) prefixes and doubles on demand


@dataclass(frozen=True)
class Hypothesis:
    """One N-best entry. ``score = am_score + alpha * lm_score + bonus`` (bonus: beta*words + hotwords)."""

    tokens: tuple[int, ...]  # collapsed token ids, no blanks
    text: str  # tokenizer.decode(tokens) ("" when no tokenizer was given)
    score: float  # total fused score used for ranking
    am_score: float  # log P_ctc(tokens | x), summed over alignments
    lm_score: float  # log P_lm(tokens, </s>), unweighted (0.0 without an LM)
    bonus: float = 0.0  # beta * |words| + hotword bonus


# --------------------------------------------------------------------------------------------------
# numba kernel
# --------------------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _lse(a, b):
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


@njit(cache=True, inline="always")
def _hslot(key, mask):
    h = (key * 2654435761 + (key >> 13)) & mask
    return h


@njit(cache=True)
def _hash_find(h_keys, h_vals, key):
    mask = h_keys.shape[0] - 1
    s = _hslot(key, mask)
    while True:
        k = h_keys[s]
        if k == key:
            return h_vals[s]
        if k == -1:
            return -1
        s = (s + 1) & mask


@njit(cache=True)
def _hash_insert(h_keys, h_vals, key, val):
    mask = h_keys.shape[0] - 1
    s = _hslot(key, mask)
    while h_keys[s] != -1:
        s = (s + 1) & mask
    h_keys[s] = key
    h_vals[s] = val


@njit(cache=True)
def _rehash(h_keys, h_vals, nd_parent, nd_token, n_nodes, V):
    for i in range(h_keys.shape[0]):
        h_keys[i] = -1
    for n in range(1, n_nodes):
        _hash_insert(h_keys, h_vals, np.int64(nd_parent[n]) * V + nd_token[n], n)


@njit(cache=True, inline="always")
def _cand_find(ch_stamp, ch_idx, c_key, stamp, key, cmask):
    """Slot of ``key`` in this frame's candidate table (occupied -> found, else the free slot)."""
    s = _hslot(key, cmask)
    while ch_stamp[s] == stamp and c_key[ch_idx[s]] != key:
        s = (s + 1) & cmask
    return s


@njit(cache=True)
def _run(lp, t, t_end, blank, topk, thr, skip_logp, beam, beam_thr,
         b_node, b_pb, b_pnb, n_beam,
         nd_parent, nd_token, nd_lm, nd_bonus, nd_hw, nd_lex, nd_row, n_nodes,
         h_keys, h_vals,
         lm_rows, use_lm, alpha, beta,
         is_sep, word_start,
         hw_child, hw_word, hw_depth, hw_weight, use_hw,
         lex_child, lex_word, use_lex,
         c_key, c_parent, c_tok, c_node, c_pb, c_pnb, c_lm, c_bonus, c_hw, c_lex, c_score,
         ch_stamp, ch_idx, cand_tok, sel_buf, stamp_ctr, need_buf):
    """Advance the beam from frame ``t`` up to ``t_end``.

    Returns ``(t, n_beam, n_nodes, reason, n_need)``; reason 0 = reached t_end; 1 = frame ``t``
    needs LM output for the ``n_need`` prefixes in ``need_buf`` (score them, then call again);
    2 = node arrays / hash must grow first.

    Per frame: (1) every beam prefix stays (blank / repeated last token); (2) ``cutoff`` = a lower
    bound of the score a candidate needs to survive (the beam-th stay score, and best stay -
    ``beam_thr``); (3) an extension (X, c) that is not already a candidate and whose upper bound
    (AM score + current LM/bonus of X + largest possible bonus; LM log-probs are <= 0) is below the
    cutoff is never created, and X gets no LM call for it. This pruning is exact: it only removes
    candidates that could not have been kept.
    """
    V = lp.shape[1]
    cap = nd_parent.shape[0]
    hcap = h_keys.shape[0]
    cmask = ch_stamp.shape[0] - 1
    max_add = 0.0  # largest score a new token can add besides its (<= 0) LM log-prob
    if use_lm:
        max_add += beta
    if use_hw:
        max_add += hw_weight
    while t < t_end:
        if n_nodes + beam >= cap or 2 * (n_nodes + beam) >= hcap:
            return t, n_beam, n_nodes, 2, 0
        row = lp[t]
        lp_blank = row[blank]
        skip = lp_blank > skip_logp
        # --- candidate tokens of this frame (top-k by log-prob, above threshold, never blank)
        n_tok = 0
        if not skip:
            if topk >= V - 1:
                for v in range(V):
                    if v != blank and row[v] >= thr:
                        cand_tok[n_tok] = v
                        n_tok += 1
            else:
                order = np.argsort(row)
                for j in range(V - 1, -1, -1):
                    v = order[j]
                    if v == blank:
                        continue
                    if row[v] < thr or n_tok >= topk:
                        break
                    cand_tok[n_tok] = v
                    n_tok += 1
        stamp_ctr[0] += 1
        stamp = stamp_ctr[0]
        n_c = 0
        # --- (1) stays
        for i in range(n_beam):
            X = b_node[i]
            pb = b_pb[i]
            pnb = b_pnb[i]
            last = nd_token[X]
            key = np.int64(nd_parent[X]) * V + last if X > 0 else np.int64(-1)
            s = _cand_find(ch_stamp, ch_idx, c_key, stamp, key, cmask)
            j = n_c
            n_c += 1
            ch_stamp[s] = stamp
            ch_idx[s] = j
            c_key[j] = key
            c_parent[j] = nd_parent[X]
            c_tok[j] = last
            c_node[j] = X
            c_lm[j] = nd_lm[X]
            c_bonus[j] = nd_bonus[X]
            c_hw[j] = nd_hw[X]
            c_lex[j] = nd_lex[X]
            c_pb[j] = _lse(pb, pnb) + lp_blank
            c_pnb[j] = pnb + row[last] if X > 0 else NEG_INF
        if n_tok > 0:
            # --- (2) survival bound from the stays alone
            best = NEG_INF
            worst = math.inf
            for j in range(n_c):
                sc = _lse(c_pb[j], c_pnb[j]) + alpha * c_lm[j] + c_bonus[j]
                if sc > best:
                    best = sc
                if sc < worst:
                    worst = sc
            cutoff = best - beam_thr
            if n_c >= beam and worst > cutoff:
                cutoff = worst
            # --- LM output needed for prefixes with a possibly surviving new extension
            if use_lm:
                n_need = 0
                for i in range(n_beam):
                    X = b_node[i]
                    if nd_row[X] >= 0:
                        continue
                    tot = _lse(b_pb[i], b_pnb[i])
                    base = alpha * nd_lm[X] + nd_bonus[X] + max_add
                    last = nd_token[X]
                    for k in range(n_tok):
                        c = cand_tok[k]
                        p_in = b_pb[i] if c == last else tot
                        if p_in + row[c] + base < cutoff:
                            continue
                        s = _cand_find(ch_stamp, ch_idx, c_key, stamp, np.int64(X) * V + c, cmask)
                        if ch_stamp[s] == stamp:
                            continue  # already a stay candidate: its LM score is known
                        need_buf[n_need] = X
                        n_need += 1
                        break
                if n_need > 0:
                    return t, n_beam, n_nodes, 1, n_need
            # --- (3) extensions
            for i in range(n_beam):
                X = b_node[i]
                pb = b_pb[i]
                tot = _lse(pb, b_pnb[i])
                last = nd_token[X]
                base = alpha * nd_lm[X] + nd_bonus[X] + max_add
                lmrow = nd_row[X]
                prev_sep = X == 0 or is_sep[last]
                for k in range(n_tok):
                    c = cand_tok[k]
                    p_in = pb if c == last else tot
                    if p_in == NEG_INF:
                        continue
                    key = np.int64(X) * V + c
                    s = _cand_find(ch_stamp, ch_idx, c_key, stamp, key, cmask)
                    if ch_stamp[s] == stamp:
                        j = ch_idx[s]
                        c_pnb[j] = _lse(c_pnb[j], p_in + row[c])
                        continue
                    if p_in + row[c] + base < cutoff:
                        continue
                    # lexicon: may this prefix grow by token c?
                    lx = 0
                    if use_lex:
                        st = nd_lex[X]
                        if is_sep[c]:
                            if st != 0 and not lex_word[st]:
                                continue
                            lx = 0
                        elif word_start[c]:
                            if st != 0 and not lex_word[st]:
                                continue
                            lx = lex_child[0, c]
                            if lx < 0:
                                continue
                        else:
                            lx = lex_child[st, c]
                            if lx < 0:
                                continue
                    j = n_c
                    n_c += 1
                    ch_stamp[s] = stamp
                    ch_idx[s] = j
                    c_key[j] = key
                    c_pb[j] = NEG_INF
                    c_pnb[j] = p_in + row[c]
                    c_parent[j] = X
                    c_tok[j] = c
                    c_node[j] = -1
                    c_lex[j] = lx
                    lm = nd_lm[X]
                    bonus = nd_bonus[X]
                    if use_lm:
                        lm += lm_rows[lmrow, c]
                        if not is_sep[c] and (prev_sep or word_start[c]):
                            bonus += beta
                    hw = nd_hw[X]
                    if use_hw:
                        boundary = is_sep[c] or word_start[c]
                        nxt = hw_child[hw, c] if hw >= 0 else -1
                        if nxt >= 0 and (hw > 0 or not is_sep[c]):
                            hw = nxt  # still spelling a hotword (phrases continue over "|")
                            bonus += hw_weight
                        else:
                            # leaving a hotword: keep its bonus only if it was complete and the
                            # word ends here
                            if hw > 0 and not (boundary and hw_word[hw]):
                                bonus -= hw_weight * hw_depth[hw]
                            if boundary:
                                hw = 0
                                if word_start[c]:
                                    hw = hw_child[0, c]
                                    if hw >= 0:
                                        bonus += hw_weight
                            else:
                                hw = -1
                    c_hw[j] = hw
                    c_lm[j] = lm
                    c_bonus[j] = bonus
        # --- keep the best `beam` candidates
        best = NEG_INF
        for j in range(n_c):
            sc = _lse(c_pb[j], c_pnb[j]) + alpha * c_lm[j] + c_bonus[j]
            c_score[j] = sc
            if sc > best:
                best = sc
        floor = best - beam_thr
        n_keep = 0
        for j in range(n_c):
            if c_score[j] >= floor:
                sel_buf[n_keep] = j
                n_keep += 1
        if n_keep > beam:
            sc = np.empty(n_keep)
            for q in range(n_keep):
                sc[q] = -c_score[sel_buf[q]]
            order = np.argsort(sc, kind="mergesort")
            tmp = np.empty(beam, np.int64)
            for q in range(beam):
                tmp[q] = sel_buf[order[q]]
            for q in range(beam):
                sel_buf[q] = tmp[q]
            n_keep = beam
        for q in range(n_keep):
            j = sel_buf[q]
            node = c_node[j]
            if node < 0:
                node = _hash_find(h_keys, h_vals, c_key[j])
                if node < 0:
                    node = n_nodes
                    n_nodes += 1
                    nd_parent[node] = c_parent[j]
                    nd_token[node] = c_tok[j]
                    nd_lm[node] = c_lm[j]
                    nd_bonus[node] = c_bonus[j]
                    nd_hw[node] = c_hw[j]
                    nd_lex[node] = c_lex[j]
                    nd_row[node] = -1
                    _hash_insert(h_keys, h_vals, c_key[j], node)
            b_node[q] = node
            b_pb[q] = c_pb[j]
            b_pnb[q] = c_pnb[j]
        n_beam = n_keep
        t += 1
    return t, n_beam, n_nodes, 0, 0


# --------------------------------------------------------------------------------------------------
# Python driver
# --------------------------------------------------------------------------------------------------
def _build_trie(seqs: Iterable[Sequence[int]], V: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token trie: child (N, V) int32 (-1 = none), is_word (N,) bool, depth (N,) int32. Node 0 = root."""
    child = [[-1] * V]
    is_word = [False]
    depth = [0]
    for seq in seqs:
        node = 0
        for tok in seq:
            nxt = child[node][tok]
            if nxt < 0:
                nxt = len(child)
                child[node][tok] = nxt
                child.append([-1] * V)
                is_word.append(False)
                depth.append(depth[node] + 1)
            node = nxt
        if node > 0:
            is_word[node] = True
    return (np.asarray(child, dtype=np.int32), np.asarray(is_word, dtype=bool),
            np.asarray(depth, dtype=np.int32))


def _encode_words(words: Iterable[str], tokenizer, what: str) -> list[list[int]]:
    if tokenizer is None:
        raise ValueError(f"{what} needs a tokenizer to turn words into token ids")
    out = []
    for w in words:
        w = str(w).strip()
        if w:
            out.append(list(tokenizer.encode(w)))
    return out


class _Search:
    """Arrays of one utterance's search; grows node storage when the kernel asks for it."""

    def __init__(self, lp: np.ndarray, beam: int, n_tok: int, lm_rows_init: int):
        T, V = lp.shape
        self.V = V
        cap = 1 + beam + min(T, _INITIAL_FRAMES) * beam
        self.nd_parent = np.empty(cap, np.int32)
        self.nd_token = np.empty(cap, np.int32)
        self.nd_lm = np.empty(cap, np.float64)
        self.nd_bonus = np.empty(cap, np.float64)
        self.nd_hw = np.empty(cap, np.int32)
        self.nd_lex = np.empty(cap, np.int32)
        self.nd_row = np.empty(cap, np.int32)
        hcap = 1 << int(math.ceil(math.log2(4 * cap)))
        self.h_keys = np.full(hcap, -1, np.int64)
        self.h_vals = np.empty(hcap, np.int32)
        nc = beam * (n_tok + 1) + 1
        self.c = [np.empty(nc, np.int64), np.empty(nc, np.int32), np.empty(nc, np.int32),
                  np.empty(nc, np.int32), np.empty(nc), np.empty(nc), np.empty(nc), np.empty(nc),
                  np.empty(nc, np.int32), np.empty(nc, np.int32), np.empty(nc)]
        chcap = 1 << int(math.ceil(math.log2(4 * nc)))
        self.ch_stamp = np.zeros(chcap, np.int64)
        self.ch_idx = np.empty(chcap, np.int32)
        self.cand_tok = np.empty(V, np.int64)
        self.sel_buf = np.empty(nc, np.int64)
        self.stamp_ctr = np.zeros(1, np.int64)
        self.need_buf = np.empty(beam, np.int64)
        self.b_node = np.zeros(beam, np.int64)
        self.b_pb = np.full(beam, NEG_INF)
        self.b_pnb = np.full(beam, NEG_INF)
        self.lm_rows = np.zeros((lm_rows_init, V), np.float32)
        self.n_rows = 0
        # root
        self.nd_parent[0] = -1
        self.nd_token[0] = -1
        self.nd_lm[0] = 0.0
        self.nd_bonus[0] = 0.0
        self.nd_hw[0] = 0
        self.nd_lex[0] = 0
        self.nd_row[0] = -1
        self.n_nodes = 1
        self.b_pb[0] = 0.0
        self.n_beam = 1

    def grow(self) -> None:
        cap = 2 * self.nd_parent.shape[0]
        for name in ("nd_parent", "nd_token", "nd_lm", "nd_bonus", "nd_hw", "nd_lex", "nd_row"):
            old = getattr(self, name)
            new = np.empty(cap, old.dtype)
            new[: self.n_nodes] = old[: self.n_nodes]
            setattr(self, name, new)
        hcap = 1 << int(math.ceil(math.log2(4 * cap)))
        self.h_keys = np.full(hcap, -1, np.int64)
        self.h_vals = np.empty(hcap, np.int32)
        _rehash(self.h_keys, self.h_vals, self.nd_parent, self.nd_token, self.n_nodes, self.V)

    def add_rows(self, rows: np.ndarray) -> int:
        n = rows.shape[0]
        if self.n_rows + n > self.lm_rows.shape[0]:
            new = np.zeros((max(2 * self.lm_rows.shape[0], self.n_rows + n), self.V), np.float32)
            new[: self.n_rows] = self.lm_rows[: self.n_rows]
            self.lm_rows = new
        start = self.n_rows
        self.lm_rows[start: start + n] = rows
        self.n_rows += n
        return start

    def tokens_of(self, node: int) -> tuple[int, ...]:
        out = []
        while node > 0:
            out.append(int(self.nd_token[node]))
            node = int(self.nd_parent[node])
        return tuple(reversed(out))


def _as_numpy_lp(log_probs) -> np.ndarray:
    if hasattr(log_probs, "detach"):
        log_probs = log_probs.detach().float().cpu().numpy()
    lp = np.ascontiguousarray(log_probs, dtype=np.float32)
    if lp.ndim != 2:
        raise ValueError(f"log_probs must be (T, V), got shape {lp.shape}")
    return lp


@dataclass
class _Options:
    """Settings shared by every utterance of one call."""

    V: int
    tokenizer: Any
    blank_id: int
    beam: int
    topk: int
    thr: float
    skip_logp: float
    beam_thr: float
    is_sep: np.ndarray
    word_start: np.ndarray
    use_lm: bool
    alpha: float
    beta: float
    use_hw: bool
    hw_child: np.ndarray
    hw_word: np.ndarray
    hw_depth: np.ndarray
    hotword_weight: float
    use_lex: bool
    lex_child: np.ndarray
    lex_word: np.ndarray
    nbest: int
    eos_id: int


def _options(V: int, tokenizer, *, blank_id: int = 0, space_id: int | None = 1, beam: int = 10, lm=None,
             alpha: float = 0.5, beta: float = 1.0, token_prune_topk: int | None = 20,
             prune_threshold: float | None = -12.0, beam_threshold: float | None = 30.0,
             blank_skip_threshold: float = 0.999, nbest: int = 1, hotwords: Sequence[str] | None = None,
             hotword_weight: float = 2.0, lexicon: Iterable[str] | None = None, eos_id: int = 0) -> _Options:
    if beam < 1:
        raise ValueError("beam must be >= 1")
    if tokenizer is not None:
        blank_id = tokenizer.blank_id
        space_id = tokenizer.space_id
    is_sep = np.zeros(V, dtype=bool)
    if space_id is not None and 0 <= space_id < V:
        is_sep[space_id] = True
    word_start = np.zeros(V, dtype=bool)
    for i in getattr(tokenizer, "word_start_ids", ()) or ():
        if 0 <= i < V:
            word_start[i] = True
    use_hw = bool(hotwords)
    hw_child, hw_word, hw_depth = _build_trie(_encode_words(hotwords, tokenizer, "hotwords") if use_hw else [], V)
    use_lex = lexicon is not None
    lex_child, lex_word, _ = _build_trie(_encode_words(lexicon, tokenizer, "lexicon") if use_lex else [], V)
    use_lm = lm is not None
    return _Options(
        V=V, tokenizer=tokenizer, blank_id=int(blank_id), beam=int(beam),
        topk=V - 1 if token_prune_topk is None or token_prune_topk >= V - 1 else int(token_prune_topk),
        thr=NEG_INF if prune_threshold is None else float(prune_threshold),
        skip_logp=math.log(blank_skip_threshold) if 0.0 < blank_skip_threshold < 1.0 else math.inf,
        beam_thr=math.inf if beam_threshold is None else float(beam_threshold),
        is_sep=is_sep, word_start=word_start, use_lm=use_lm,
        alpha=float(alpha) if use_lm else 0.0, beta=float(beta) if use_lm else 0.0,
        use_hw=use_hw, hw_child=hw_child, hw_word=hw_word, hw_depth=hw_depth,
        hotword_weight=float(hotword_weight), use_lex=use_lex, lex_child=lex_child, lex_word=lex_word,
        nbest=max(1, int(nbest)), eos_id=int(eos_id))


class _Utterance:
    """One utterance's search: runs the kernel until it needs LM output, then waits for it."""

    def __init__(self, lp: np.ndarray, o: _Options):
        self.lp = lp
        self.o = o
        self.T = lp.shape[0]
        self.S = _Search(lp, o.beam, o.topk, lm_rows_init=(4 * o.beam + 8) if o.use_lm else 1)
        self.states: dict[int, Any] = {}
        self.t = 0
        self.searched = False

    def advance(self) -> list[int] | None:
        """Prefixes whose LM output is needed next, or None when the utterance is finished."""
        o, S = self.o, self.S
        c = S.c
        while not self.searched:
            self.t, S.n_beam, S.n_nodes, reason, n_need = _run(
                self.lp, self.t, self.T, o.blank_id, o.topk, o.thr, o.skip_logp, o.beam, o.beam_thr,
                S.b_node, S.b_pb, S.b_pnb, S.n_beam,
                S.nd_parent, S.nd_token, S.nd_lm, S.nd_bonus, S.nd_hw, S.nd_lex, S.nd_row, S.n_nodes,
                S.h_keys, S.h_vals,
                S.lm_rows, o.use_lm, o.alpha, o.beta,
                o.is_sep, o.word_start,
                o.hw_child, o.hw_word, o.hw_depth, o.hotword_weight, o.use_hw,
                o.lex_child, o.lex_word, o.use_lex,
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10],
                S.ch_stamp, S.ch_idx, S.cand_tok, S.sel_buf, S.stamp_ctr, S.need_buf)
            if reason == 0:
                self.searched = True
            elif reason == 2:
                S.grow()
            else:
                return [int(n) for n in S.need_buf[:n_need]]
        if o.use_lm:  # </s> needs the LM output of every final prefix
            need = [int(n) for n in S.b_node[: S.n_beam] if S.nd_row[n] < 0]
            if need:
                return need
        return None

    def lm_inputs(self, nodes: list[int], init_state) -> tuple[list[int], list]:
        toks, sts = [], []
        for n in nodes:
            if n == 0:
                toks.append(self.o.eos_id)  # <s>
                sts.append(init_state)
            else:
                toks.append(int(self.S.nd_token[n]))
                sts.append(self.states[int(self.S.nd_parent[n])])
        return toks, sts

    def lm_outputs(self, nodes: list[int], rows: np.ndarray, new_states) -> None:
        start = self.S.add_rows(rows)
        for i, n in enumerate(nodes):
            self.S.nd_row[n] = start + i
            self.states[n] = new_states[i]

    def hypotheses(self) -> list[Hypothesis]:
        """Final scores (</s>, unfinished hotwords, lexicon word ends), best first."""
        o, S = self.o, self.S
        finals = []
        for i in range(S.n_beam):
            n = int(S.b_node[i])
            am = _lse(float(S.b_pb[i]), float(S.b_pnb[i]))
            lm_total = float(S.nd_lm[n])
            if o.use_lm:
                lm_total += float(S.lm_rows[S.nd_row[n], o.eos_id])
            bonus = float(S.nd_bonus[n])
            if o.use_hw:
                h = int(S.nd_hw[n])
                if h > 0 and not o.hw_word[h]:
                    bonus -= o.hotword_weight * int(o.hw_depth[h])
            ok = True
            if o.use_lex:
                st = int(S.nd_lex[n])
                ok = st == 0 or bool(o.lex_word[st])
            finals.append((am + o.alpha * lm_total + bonus, am, lm_total, bonus, ok, n))
        if o.use_lex and any(f[4] for f in finals):
            finals = [f for f in finals if f[4]]
        finals.sort(key=lambda f: -f[0])
        out = []
        for score, am, lm_total, bonus, _, n in finals[: o.nbest]:
            toks = S.tokens_of(n)
            text = o.tokenizer.decode(toks) if o.tokenizer is not None else ""
            out.append(Hypothesis(tokens=toks, text=text, score=score, am_score=am,
                                  lm_score=lm_total if o.use_lm else 0.0, bonus=bonus))
        return out


def _decode(lps: list[np.ndarray], o: _Options, lm) -> list[list[Hypothesis]]:
    """Run all utterances in lockstep: each LM round is ONE ``score_batch`` over every utterance's
    pending prefixes (so a batch of B utterances costs about one LM call per frame, not B)."""
    utts = [_Utterance(lp, o) for lp in lps]
    init_state = lm.initial_state() if o.use_lm else None
    pending = utts
    while pending:
        reqs = []
        for u in pending:
            nodes = u.advance()
            if nodes is not None:
                reqs.append((u, nodes))
        if not reqs:
            break
        toks: list[int] = []
        sts: list = []
        for u, nodes in reqs:
            t_, s_ = u.lm_inputs(nodes, init_state)
            toks += t_
            sts += s_
        rows, new_states = lm.score_batch(sts, np.asarray(toks, dtype=np.int64))
        rows = np.asarray(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape != (len(toks), o.V):
            raise ASRError(f"the LM returned scores of shape {rows.shape} for {len(toks)} prefixes, expected "
                           f"({len(toks)}, {o.V}): it was trained on a different token set than the acoustic "
                           "model (retrain it with the model's tokens.txt)")
        k = 0
        for u, nodes in reqs:
            u.lm_outputs(nodes, rows[k: k + len(nodes)], new_states[k: k + len(nodes)])
            k += len(nodes)
        pending = [u for u, _ in reqs]
    return [u.hypotheses() for u in utts]


def beam_search(log_probs, tokenizer=None, **kwargs) -> list[Hypothesis]:
    """CTC prefix beam search (optionally with LM shallow fusion) over one utterance.

    ``log_probs``: (T, V) log-softmax output (numpy or torch). Keyword options (defaults):

    * ``tokenizer``: gives ``decode`` for the text and the word-boundary tokens (``space_id`` /
      ``word_start_ids``); without one, ``blank_id`` (0) and ``space_id`` (1) are used.
    * ``beam`` (10); ``nbest`` (1, at most ``beam``).
    * ``lm`` (None): scorer with ``initial_state`` / ``score_batch`` (see module doc); ``alpha`` (0.5)
      weights its log-prob, ``beta`` (1.0) is added per word; both are ignored without an LM.
      ``eos_id`` (0) is ``<s>``/``</s>``.
    * ``token_prune_topk`` (20, None = all) and ``prune_threshold`` (-12.0, None = off) limit the
      tokens tried per frame; ``beam_threshold`` (30.0, None = off) drops candidates that far below
      the best; frames with P(blank) > ``blank_skip_threshold`` (0.999; >= 1 disables) create no
      new prefixes.
    * ``hotwords`` (words or phrases) earn ``hotword_weight`` (2.0) per matched token while being
      spelled, taken back if the word ends unfinished; ``lexicon`` (word list): prefixes may only
      spell words from it.

    Returns up to ``nbest`` hypotheses, best first.
    """
    lp = _as_numpy_lp(log_probs)
    o = _options(lp.shape[1], tokenizer, **kwargs)
    return _decode([lp], o, kwargs.get("lm"))[0]


def beam_search_batch(log_probs, lengths=None, tokenizer=None, **kwargs) -> list[list[Hypothesis]]:
    """``beam_search`` for B utterances: a (B, T, V) array/tensor with ``lengths`` (B,), or a list of
    (T_i, V) arrays. With an LM, all utterances share each LM call (one batched forward per round)."""
    if isinstance(log_probs, (list, tuple)):
        lps = [_as_numpy_lp(x) for x in log_probs]
    else:
        if hasattr(log_probs, "detach"):
            log_probs = log_probs.detach().float().cpu().numpy()
        if lengths is not None and hasattr(lengths, "detach"):
            lengths = lengths.detach().cpu().numpy()
        log_probs = np.asarray(log_probs)
        if log_probs.ndim == 2:
            log_probs = log_probs[None]
        B = log_probs.shape[0]
        if lengths is None:
            lengths = [log_probs.shape[1]] * B
        lps = [_as_numpy_lp(log_probs[i, : int(lengths[i])]) for i in range(B)]
    if not lps:
        return []
    V = lps[0].shape[1]
    if any(x.shape[1] != V for x in lps):
        raise ValueError("all utterances must have the same vocabulary size")
    o = _options(V, tokenizer, **kwargs)
    return _decode(lps, o, kwargs.get("lm"))


def warmup() -> None:
    """Compile (or load from the numba cache) the kernel on a tiny input."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    x -= np.log(np.exp(x).sum(-1, keepdims=True))
    beam_search(x, beam=2)
