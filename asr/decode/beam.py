"""CTC prefix beam search with LSTM-LM shallow fusion, lexicon constraint and hotword boosting.

Score of a prefix ``y`` (a collapsed, blank-free token sequence)::

    score(y) = log P_ctc(y | x) + alpha * log P_lm(y) + ngram_weight * ln P_ngram(y) + beta * |words(y)| + hotword bonus

``log P_ctc`` is the CTC prefix probability (sum over alignments, kept as the usual blank / non-blank
pair ``pb``, ``pnb``). The LM is a token (character or BPE) LM: every emitted token is scored, the
word separator included, and at the end ``alpha * log P_lm(</s> | y)`` is added (``</s>`` = id 0).

A word n-gram LM (:mod:`asr.ngram`) adds ``ngram_weight * ln P_ngram(words(y))``, computed inside the
kernel (``_ngram_step``): a separator (or BPE word-start piece) completes the word being spelled and
scores it given the n-gram state of the words before; while a word is being spelled, it scores the
best unigram of the LM words the prefix can still become (a token trie of the LM's vocabulary), or
``unk_offset`` once it can become none; the end of the utterance completes the last word and adds
``</s>``. The exact score of every extension is known there, so the bound-based pruning stays exact.
With both LMs, the LSTM LM is fused as above or rescores the N-best (``lstm_mode``,
:mod:`asr.decode.rescore`).

Every setting comes from one :class:`~asr.decode.config.DecodeConfig`;
``beam_search(lp, tokenizer, options, beam=4)`` searches with ``dataclasses.replace(options, beam=4)``.

Speed: prefixes are integer node ids in a trie (parent, token) with an open-addressing hash
``(parent, token) -> node``, so a prefix that leaves the beam and comes back keeps its id and its
cached LM output. The frame loop is one numba kernel, :func:`_run`, made of named steps
(``cache=True``: compiled once per machine, ~10 s, then loaded from ``__pycache__`` in ~1 s;
``warmup()`` does it up front). Without an LM the kernel runs the whole utterance in one call. Per
frame, the stay candidates (blank / repeat) give a lower bound of the score needed to survive; an
extension whose upper bound (LM log-probs are <= 0, a hotword token earns at most the largest boost,
the n-gram score is exact) is below it is never created, and its prefix
needs no LM call - exact pruning, results unchanged. With an LM the kernel returns when a frame
needs LM output for prefixes that have none; Python scores *all* of them in one batched
``lm.score_batch`` call (at most one LM forward per frame) and resumes. Frames whose blank
probability exceeds ``blank_skip_threshold`` only propagate the beam (no new prefixes, no LM call);
each frame considers at most ``token_prune_topk`` tokens whose log-prob is at least
``prune_threshold``; candidates more than ``beam_threshold`` below the best are dropped.

LM interface (``asr.models.lm.TorchLMScorer``; an onnxruntime scorer implements the same)::

    lm.initial_state() -> state                       # state before <s>
    lm.score_batch(states: list, tokens: np.ndarray (N,) int64) -> (log_probs np (N, V), new_states)

``score_batch`` consumes ``tokens[i]`` in ``states[i]`` and returns the log-distribution of the next
token. The search feeds ``<s>`` (= blank id 0) first, so it never needs to know what a state is.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from ..errors import ASRError, ConfigError
from ..ngram.model import NgramLM, NgramTables, ngram_score
from ..tokens import LM_BOUNDARY_ID
from .config import DecodeConfig
from .hashing import _hash_find, _hash_insert, _hslot, njit


NEG_INF = -math.inf
_INITIAL_FRAMES = 4096  # node storage starts at beam * min(T, this) prefixes and doubles on demand
# why the kernel returned
_DONE, _NEED_LM, _GROW, _NEED_NG = 0, 1, 2, 3


@dataclass(frozen=True)
class Hypothesis:
    """One N-best entry. ``score = am_score + alpha * lm_score + ngram_weight * ngram_score + bonus``
    (bonus: beta*words + hotwords)."""

    tokens: tuple[int, ...]  # collapsed token ids, no blanks
    text: str  # tokenizer.decode(tokens) ("" when no tokenizer was given)
    score: float  # total fused score used for ranking
    am_score: float  # log P_ctc(tokens | x), summed over alignments
    lm_score: float  # log P_lm(tokens, </s>), unweighted (0.0 without an LM)
    bonus: float = 0.0  # beta * |words| + hotword bonus
    ngram_score: float = 0.0  # word n-gram ln P(words, </s>) incl. OOV offsets, unweighted (0.0 without one)


# --------------------------------------------------------------------------------------------------
# The kernel's data: named tuples of arrays (numba passes them like the arrays they hold)
# --------------------------------------------------------------------------------------------------
class _Rules(NamedTuple):
    """Settings of one search, in the kernel's terms (derived from a DecodeConfig by ``_rules``)."""

    blank: int  # blank token id
    beam: int  # prefixes kept per frame
    topk: int  # tokens tried per frame (V - 1 = all)
    thr: float  # tokens below this frame log-prob are not tried (-inf = all)
    skip_logp: float  # frames with log P(blank) above this create no prefixes (inf = never)
    beam_thr: float  # candidates this far below the best are dropped (inf = never)
    use_lm: bool  # an LM is fused
    alpha: float  # LM weight (0 without an LM)
    beta: float  # bonus per word (0 without an LM)
    is_sep: np.ndarray  # (V,) bool: the word separator token(s)
    word_start: np.ndarray  # (V,) bool: tokens that begin a word (BPE "▁" pieces)
    use_hw: bool  # hotwords are boosted
    hw_weight: float  # largest bonus one hotword token earns (the pruning bound)
    use_lex: bool  # prefixes must spell lexicon words
    use_ng: bool  # a word n-gram LM is fused (asr.ngram)
    ng_weight: float  # its weight on ln p(word | history) (0 without one)
    unk_offset: float  # ln score added for a word (or partial word) outside its vocabulary
    ng_eos: int  # its word id of </s>
    ng_fill: bool  # its tables are a cache the kernel returns to have filled (a KenLM binary, asr.ngram.binary)


class _Trie(NamedTuple):
    """A token trie of words (hotwords or lexicon); node 0 is the root (a word boundary)."""

    child: np.ndarray  # (N, V) int32: node reached by a token, -1 = none
    is_word: np.ndarray  # (N,) bool: a whole word ends at this node
    depth: np.ndarray  # (N,) int32: tokens from the root
    gain: np.ndarray  # (N,) float64: hotword bonus for reaching this node (the largest boost of the hotwords through it)
    acc: np.ndarray  # (N,) float64: bonus earned from the root to this node (sum of gains), taken back if unfinished
    kept: np.ndarray  # (N,) float64: bonus a hotword ending here keeps (its boost x its tokens; <= acc)


class _VocabTrie(NamedTuple):
    """The n-gram LM's vocabulary as a token trie, for the partial-word score; node 0 = no word."""

    child: np.ndarray  # (N, V) int32: node reached by a token, -1 = the prefix spells no LM word
    word: np.ndarray  # (N,) int32: n-gram word id of the word ending here, -1 = none
    smear: np.ndarray  # (N,) float64: best unigram ln p of any word under this node (the partial score)
    depth: np.ndarray  # (N,) int32: tokens from the root


class _Nodes(NamedTuple):
    """The prefix trie of one utterance: node n is prefix ``parent[n]`` + ``token[n]``; 0 = empty."""

    parent: np.ndarray  # int32 parent node (-1 at the root)
    token: np.ndarray  # int32 last token (-1 at the root)
    lm: np.ndarray  # float64 unweighted log P_lm of the prefix
    bonus: np.ndarray  # float64 beta * words + hotword bonus of the prefix
    hw: np.ndarray  # int32 hotword-trie state (0 = between words, -1 = in a word that is no hotword)
    lex: np.ndarray  # int32 lexicon-trie state (0 = between words)
    row: np.ndarray  # int32 row of lm_rows with the LM's next-token log-probs (-1 = not scored yet)
    ng: np.ndarray  # float64 unweighted n-gram ln score: whole words + the partial word's score
    ng_hist: np.ndarray  # int32 n-gram state of the whole words
    ng_word: np.ndarray  # int32 vocabulary-trie node of the word being spelled (0 = none, -k = OOV of k tokens)
    h_keys: np.ndarray  # int64 hash of (parent * V + token) -> node: keys, -1 = empty slot
    h_vals: np.ndarray  # int32 hash values (node ids)


class _Beam(NamedTuple):
    """The prefixes alive after a frame (``n_beam`` of them) and their CTC log-probabilities."""

    node: np.ndarray  # int64 node id
    pb: np.ndarray  # float64 log P(prefix, ending in blank)
    pnb: np.ndarray  # float64 log P(prefix, ending in its last token)


class _Candidates(NamedTuple):
    """One frame's candidate prefixes (index j) plus the frame's hash table and work buffers."""

    key: np.ndarray  # int64 parent * V + token (-1 = the empty prefix)
    parent: np.ndarray  # int32 parent node
    tok: np.ndarray  # int32 last token
    node: np.ndarray  # int32 node id, -1 = a new prefix not yet in the trie
    pb: np.ndarray  # float64 log P(ending in blank)
    pnb: np.ndarray  # float64 log P(ending in the last token)
    lm: np.ndarray  # float64 unweighted log P_lm
    bonus: np.ndarray  # float64 word + hotword bonus
    hw: np.ndarray  # int32 hotword-trie state
    lex: np.ndarray  # int32 lexicon-trie state
    ng: np.ndarray  # float64 n-gram ln score (see _Nodes)
    ng_hist: np.ndarray  # int32 n-gram state
    ng_word: np.ndarray  # int32 vocabulary-trie node
    score: np.ndarray  # float64 fused score
    slot_stamp: np.ndarray  # int64 hash slot -> frame stamp (a slot is used iff it equals this frame's)
    slot_idx: np.ndarray  # int32 hash slot -> candidate index
    stamp: np.ndarray  # (1,) int64 frame stamp counter
    tokens: np.ndarray  # (V,) int64 tokens tried this frame
    keep: np.ndarray  # int64 indices of the kept candidates
    need: np.ndarray  # (beam,) int64 nodes that need LM output
    ng_need: np.ndarray  # (beam,) int64 n-gram (state * W + word) pairs the cache lacks (ng_fill)


# --------------------------------------------------------------------------------------------------
# numba kernel
# --------------------------------------------------------------------------------------------------
# The steps take named tuples of arrays and are compiled without reference counting (``_nrt=False``):
# they only index arrays they are given (no allocation), and numba would otherwise incref and decref
# every array of every tuple at each call - per frame and per candidate, 10-40 % of the search time.
_step = njit(cache=True, _nrt=False)


@njit(cache=True, inline="always")
def _lse(a, b):
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


@_step
def _rehash(h_keys, h_vals, nd_parent, nd_token, n_nodes, V):
    for i in range(h_keys.shape[0]):
        h_keys[i] = -1
    for n in range(1, n_nodes):
        _hash_insert(h_keys, h_vals, np.int64(nd_parent[n]) * V + nd_token[n], n)


@_step
def _cand_find(cand, stamp, key):
    """Slot of ``key`` in this frame's candidate table (used -> found, else the free slot)."""
    cmask = cand.slot_stamp.shape[0] - 1
    s = _hslot(key, cmask)
    while cand.slot_stamp[s] == stamp and cand.key[cand.slot_idx[s]] != key:
        s = (s + 1) & cmask
    return s


@_step
def _word_complete(lex, state):
    """The lexicon rule at a word boundary: the word spelled so far is a whole lexicon word."""
    return state == 0 or lex.is_word[state]


@_step
def _lexicon_step(lex, is_sep, word_start, state, c):
    """The lexicon rule: the lexicon state after token ``c``, or -1 where the lexicon forbids ``c``.

    A separator ends the word (allowed only after a whole word, back to the root); a word-start
    token (BPE) ends the word the same way and begins a new one; any other token continues the word
    along the trie."""
    if is_sep[c]:
        if not _word_complete(lex, state):
            return -1
        return 0
    if word_start[c]:
        if not _word_complete(lex, state):
            return -1
        return lex.child[0, c]
    return lex.child[state, c]


@_step
def _hotword_leave(hot, state, bonus, boundary):
    """Leaving hotword-trie ``state``: a whole hotword ending at a boundary keeps its own bonus
    (``kept``); an unfinished or cut-off one gives back all it earned (``acc``)."""
    if state > 0:
        if boundary and hot.is_word[state]:
            bonus += hot.kept[state] - hot.acc[state]
        else:
            bonus -= hot.acc[state]
    return bonus


@_step
def _hotword_step(hot, is_sep, word_start, state, c, bonus):
    """The hotword rule: ``(state, bonus)`` after token ``c``.

    While the prefix spells a hotword (phrases continue over the separator) each token earns the
    ``gain`` of the trie node it reaches (the hotword's boost); leaving the trie settles the bonus
    (:func:`_hotword_leave`). State 0 is a word boundary, -1 a word that is no hotword (nothing to
    earn until the next boundary)."""
    boundary = is_sep[c] or word_start[c]
    nxt = hot.child[state, c] if state >= 0 else -1
    if nxt >= 0 and (state > 0 or not is_sep[c]):
        return nxt, bonus + hot.gain[nxt]  # still spelling a hotword
    bonus = _hotword_leave(hot, state, bonus, boundary)
    if boundary:
        state = 0
        if word_start[c]:
            state = hot.child[0, c]
            if state >= 0:
                bonus += hot.gain[state]
    else:
        state = -1
    return state, bonus


@_step
def _oov_score(r, n_tok):
    """The OOV offset of a word (or partial word) of ``n_tok`` tokens outside the n-gram vocabulary:
    ``unk_offset``, scaled by length past 6 tokens as pyctcdecode does (so that merging many words
    into one long OOV word costs more than spelling them)."""
    return r.unk_offset * max(1.0, n_tok / 6.0)


@_step
def _ngram_word_end(ng, vt, r, hist, wnode, score):
    """The n-gram rule at a word boundary: ``(state, score)`` once the word being spelled (vocab-trie
    node ``wnode``; 0 = none, -k = OOV of k tokens) is complete: its partial score is replaced by
    ln p(word | state), or by ln p(<unk> | state) + its OOV offset for a word outside the LM's
    vocabulary (a prefix of vocabulary words that is no word itself included)."""
    if wnode == 0:
        return hist, score
    if wnode > 0:
        score -= vt.smear[wnode]
        w = vt.word[wnode]
        if w >= 0:
            s, hist = ngram_score(ng, hist, w)
            return hist, score + s
        off = _oov_score(r, vt.depth[wnode])
    else:
        off = _oov_score(r, -wnode)
        score -= off
    s, hist = ngram_score(ng, hist, ng.unk)
    return hist, score + s + off


@_step
def _ngram_step(ng, vt, r, hist, wnode, score, c):
    """The n-gram rule: ``(state, vocab-trie node, score)`` after token ``c``. A separator (or a BPE
    word-start piece) completes the word in progress; inside a word the partial score is the best
    unigram ln p of any LM word the prefix can still become (flashlight's smearing), or
    ``unk_offset`` once the prefix spells no LM word (pyctcdecode's OOV rule)."""
    if r.is_sep[c]:
        hist, score = _ngram_word_end(ng, vt, r, hist, wnode, score)
        return hist, 0, score
    if r.word_start[c] and wnode != 0:
        hist, score = _ngram_word_end(ng, vt, r, hist, wnode, score)
        wnode = 0
    if wnode < 0:  # one more OOV token
        return hist, wnode - 1, score - _oov_score(r, -wnode) + _oov_score(r, 1 - wnode)
    depth = 0
    if wnode > 0:
        score -= vt.smear[wnode]
        depth = vt.depth[wnode]
    nxt = vt.child[wnode, c]
    if nxt >= 0:
        return hist, nxt, score + vt.smear[nxt]
    return hist, -(depth + 1), score + _oov_score(r, depth + 1)


@_step
def _starts_word(r, prev_sep, c):
    """Token ``c`` after a prefix (ending in a separator if ``prev_sep``) begins a new word."""
    return not r.is_sep[c] and (prev_sep or r.word_start[c])


@_step
def _all_tokens(row, blank, thr, out):
    """The tokens tried in a frame (log-probs ``row``) without top-k pruning: all but blank at least ``thr``."""
    n_tok = 0
    for v in range(row.shape[0]):
        if v != blank and row[v] >= thr:
            out[n_tok] = v
            n_tok += 1
    return n_tok


@_step
def _top_tokens(row, order, blank, topk, thr, out):
    """The tokens tried in a frame (log-probs ``row``, ``order`` = its argsort): the ``topk`` most
    likely but blank, at least ``thr``."""
    n_tok = 0
    for j in range(row.shape[0] - 1, -1, -1):
        v = order[j]
        if v == blank:
            continue
        if row[v] < thr or n_tok >= topk:
            break
        out[n_tok] = v
        n_tok += 1
    return n_tok


@_step
def _add_stays(row, r, beam, n_beam, nodes, cand, stamp):
    """Step 1: every beam prefix stays (blank, or its last token repeated). Returns the count."""
    V = row.shape[0]
    lp_blank = row[r.blank]
    n_c = 0
    for i in range(n_beam):
        X = beam.node[i]
        pb = beam.pb[i]
        pnb = beam.pnb[i]
        last = nodes.token[X]
        key = np.int64(nodes.parent[X]) * V + last if X > 0 else np.int64(-1)
        s = _cand_find(cand, stamp, key)
        j = n_c
        n_c += 1
        cand.slot_stamp[s] = stamp
        cand.slot_idx[s] = j
        cand.key[j] = key
        cand.parent[j] = nodes.parent[X]
        cand.tok[j] = last
        cand.node[j] = X
        cand.lm[j] = nodes.lm[X]
        cand.bonus[j] = nodes.bonus[X]
        cand.hw[j] = nodes.hw[X]
        cand.lex[j] = nodes.lex[X]
        cand.ng[j] = nodes.ng[X]
        cand.ng_hist[j] = nodes.ng_hist[X]
        cand.ng_word[j] = nodes.ng_word[X]
        cand.pb[j] = _lse(pb, pnb) + lp_blank
        cand.pnb[j] = pnb + row[last] if X > 0 else NEG_INF
    return n_c


@_step
def _survival_cutoff(r, cand, n_c):
    """Step 2: a lower bound of the score a candidate needs to survive, from the stays alone (the
    beam-th stay score, and the best stay - ``beam_thr``)."""
    best = NEG_INF
    worst = math.inf
    for j in range(n_c):
        sc = _lse(cand.pb[j], cand.pnb[j]) + r.alpha * cand.lm[j] + r.ng_weight * cand.ng[j] + cand.bonus[j]
        if sc > best:
            best = sc
        if sc < worst:
            worst = sc
    cutoff = best - r.beam_thr
    if n_c >= r.beam and worst > cutoff:
        cutoff = worst
    return cutoff


@_step
def _word_end_key(ng, vt, hist, wnode):
    """The n-gram pair ``state * W + word`` that completing the word at vocab-trie node ``wnode``
    scores (its word, or ``<unk>`` outside the vocabulary), or -1 when no word is being spelled."""
    if wnode == 0:
        return np.int64(-1)
    w = vt.word[wnode] if wnode > 0 else -1
    if w < 0:
        w = ng.unk
    return np.int64(hist) * ng.W + w


@_step
def _ngram_misses(r, ng, vt, beam, n_beam, nodes, cand, n_tok):
    """With a cache of n-gram scores (``ng_fill``, a KenLM binary): the pairs that this frame's word
    ends would score and the cache lacks -> cand.ng_need[:n]. A word ends at a separator or a BPE
    word-start piece; whichever ends it, prefix X completes the same word, so each beam prefix
    needs at most one pair, asked for whether or not its extension may survive (the exact bound
    of that needs the score)."""
    ends = False
    for k in range(n_tok):
        c = cand.tokens[k]
        if r.is_sep[c] or r.word_start[c]:
            ends = True
            break
    if not ends:
        return 0
    n = 0
    for i in range(n_beam):
        X = beam.node[i]
        key = _word_end_key(ng, vt, nodes.ng_hist[X], nodes.ng_word[X])
        if key < 0 or _hash_find(ng.h_keys, ng.h_vals, key) >= 0:
            continue
        dup = False
        for q in range(n):
            if cand.ng_need[q] == key:
                dup = True
                break
        if not dup:
            cand.ng_need[n] = key
            n += 1
    return n


@_step
def _prefixes_needing_lm(row, r, ng, vt, beam, n_beam, nodes, cand, stamp, n_tok, cutoff, max_add):
    """Beam prefixes without LM output that have an extension which may survive -> cand.need[:n]."""
    V = row.shape[0]
    n_need = 0
    for i in range(n_beam):
        X = beam.node[i]
        if nodes.row[X] >= 0:
            continue
        tot = _lse(beam.pb[i], beam.pnb[i])
        base = r.alpha * nodes.lm[X] + r.ng_weight * nodes.ng[X] + nodes.bonus[X] + max_add
        last = nodes.token[X]
        for k in range(n_tok):
            c = cand.tokens[k]
            p_in = beam.pb[i] if c == last else tot
            ng_gain = 0.0
            if r.use_ng:  # exact: the n-gram score of the extension is known here
                ng_gain = r.ng_weight * (_ngram_step(ng, vt, r, nodes.ng_hist[X], nodes.ng_word[X], nodes.ng[X], c)[2]
                                         - nodes.ng[X])
            if p_in + row[c] + base + ng_gain < cutoff:
                continue
            s = _cand_find(cand, stamp, np.int64(X) * V + c)
            if cand.slot_stamp[s] == stamp:
                continue  # already a stay candidate: its LM score is known
            cand.need[n_need] = X
            n_need += 1
            break
    return n_need


@_step
def _add_extensions(row, r, hot, lex, ng, vt, beam, n_beam, nodes, lm_rows, cand, stamp, n_tok, n_c, cutoff, max_add):
    """Step 3: extensions (X, c) of every beam prefix X by a tried token c. One that is already a
    candidate gains the probability mass; a new one is created unless its upper bound is below
    ``cutoff`` or the lexicon forbids it. Returns the candidate count."""
    V = row.shape[0]
    for i in range(n_beam):
        X = beam.node[i]
        pb = beam.pb[i]
        tot = _lse(pb, beam.pnb[i])
        last = nodes.token[X]
        base = r.alpha * nodes.lm[X] + r.ng_weight * nodes.ng[X] + nodes.bonus[X] + max_add
        lmrow = nodes.row[X]
        prev_sep = X == 0 or r.is_sep[last]
        for k in range(n_tok):
            c = cand.tokens[k]
            p_in = pb if c == last else tot
            if p_in == NEG_INF:
                continue
            key = np.int64(X) * V + c
            s = _cand_find(cand, stamp, key)
            if cand.slot_stamp[s] == stamp:
                j = cand.slot_idx[s]
                cand.pnb[j] = _lse(cand.pnb[j], p_in + row[c])
                continue
            ng_hist, ng_word, ng_sc = nodes.ng_hist[X], nodes.ng_word[X], nodes.ng[X]
            if r.use_ng:  # exact: the n-gram score of the extension is known here
                ng_hist, ng_word, ng_sc = _ngram_step(ng, vt, r, ng_hist, ng_word, ng_sc, c)
            if p_in + row[c] + base + r.ng_weight * (ng_sc - nodes.ng[X]) < cutoff:
                continue
            lx = 0
            if r.use_lex:
                lx = _lexicon_step(lex, r.is_sep, r.word_start, nodes.lex[X], c)
                if lx < 0:
                    continue
            j = n_c
            n_c += 1
            cand.slot_stamp[s] = stamp
            cand.slot_idx[s] = j
            cand.key[j] = key
            cand.pb[j] = NEG_INF
            cand.pnb[j] = p_in + row[c]
            cand.parent[j] = X
            cand.tok[j] = c
            cand.node[j] = -1
            cand.lex[j] = lx
            cand.ng[j] = ng_sc
            cand.ng_hist[j] = ng_hist
            cand.ng_word[j] = ng_word
            lm = nodes.lm[X]
            bonus = nodes.bonus[X]
            if r.use_lm:
                lm += lm_rows[lmrow, c]
            if (r.use_lm or r.use_ng) and _starts_word(r, prev_sep, c):
                bonus += r.beta
            hw = nodes.hw[X]
            if r.use_hw:
                hw, bonus = _hotword_step(hot, r.is_sep, r.word_start, hw, c, bonus)
            cand.hw[j] = hw
            cand.lm[j] = lm
            cand.bonus[j] = bonus
    return n_c


@_step
def _score_candidates(r, cand, n_c):
    """Step 4: fused scores; the candidates within ``beam_thr`` of the best -> cand.keep[:n]."""
    best = NEG_INF
    for j in range(n_c):
        sc = _lse(cand.pb[j], cand.pnb[j]) + r.alpha * cand.lm[j] + r.ng_weight * cand.ng[j] + cand.bonus[j]
        cand.score[j] = sc
        if sc > best:
            best = sc
    floor = best - r.beam_thr
    n_keep = 0
    for j in range(n_c):
        if cand.score[j] >= floor:
            cand.keep[n_keep] = j
            n_keep += 1
    return n_keep


@_step
def _commit_beam(beam, nodes, n_nodes, cand, n_keep):
    """Step 6: the kept candidates become the beam; new prefixes among them get trie nodes (a prefix
    seen before keeps its node). Returns the node count."""
    for q in range(n_keep):
        j = cand.keep[q]
        node = cand.node[j]
        if node < 0:
            node = _hash_find(nodes.h_keys, nodes.h_vals, cand.key[j])
            if node < 0:
                node = n_nodes
                n_nodes += 1
                nodes.parent[node] = cand.parent[j]
                nodes.token[node] = cand.tok[j]
                nodes.lm[node] = cand.lm[j]
                nodes.bonus[node] = cand.bonus[j]
                nodes.hw[node] = cand.hw[j]
                nodes.lex[node] = cand.lex[j]
                nodes.ng[node] = cand.ng[j]
                nodes.ng_hist[node] = cand.ng_hist[j]
                nodes.ng_word[node] = cand.ng_word[j]
                nodes.row[node] = -1
                _hash_insert(nodes.h_keys, nodes.h_vals, cand.key[j], node)
        beam.node[q] = node
        beam.pb[q] = cand.pb[j]
        beam.pnb[q] = cand.pnb[j]
    return n_nodes


@njit(cache=True)
def _run(lp, t, t_end, r, hot, lex, ng, vt, beam, n_beam, nodes, n_nodes, lm_rows, cand):
    """Advance the beam from frame ``t`` up to ``t_end``.

    ``r, hot, lex, ng, vt, beam, nodes, cand`` come as plain tuples (numba types those fastest) of the
    named tuples' fields. Returns ``(t, n_beam, n_nodes, reason, n_need)``; reason ``_DONE`` =
    reached t_end; ``_NEED_LM`` = frame ``t`` needs LM output for the ``n_need`` prefixes in
    ``cand.need`` (score them, then call again); ``_NEED_NG`` = frame ``t`` needs the n-gram scores
    of the ``n_need`` pairs in ``cand.ng_need`` (a KenLM binary's cache: fill it, then call again);
    ``_GROW`` = node arrays / hash must grow first.

    Per frame: (1) every beam prefix stays (blank / repeated last token); (2) ``cutoff`` = a lower
    bound of the score a candidate needs to survive; (3) an extension (X, c) that is not already a
    candidate and whose upper bound (AM score + current LM/bonus of X + largest possible bonus; LM
    log-probs are <= 0) is below the cutoff is never created, and X gets no LM call for it. This
    pruning is exact: it only removes candidates that could not have been kept. (4-6) the best
    candidates become the beam (the sort allocates, so it stays here, out of the steps).
    """
    r, hot, lex, beam, nodes, cand = _Rules(*r), _Trie(*hot), _Trie(*lex), _Beam(*beam), _Nodes(*nodes), _Candidates(*cand)
    ng, vt = NgramTables(*ng), _VocabTrie(*vt)
    V = lp.shape[1]
    max_add = 0.0  # largest score a new token can add besides its (<= 0) LM log-prob
    if r.use_lm or r.use_ng:
        max_add += max(r.beta, 0.0)  # a token that begins no word adds 0, not a negative beta
    if r.use_hw:
        max_add += r.hw_weight
    while t < t_end:
        if n_nodes + r.beam >= nodes.parent.shape[0] or 2 * (n_nodes + r.beam) >= nodes.h_keys.shape[0]:
            return t, n_beam, n_nodes, _GROW, 0
        row = lp[t]
        n_tok = 0
        if not row[r.blank] > r.skip_logp:  # else a frame of blank: no new prefixes
            if r.topk >= V - 1:
                n_tok = _all_tokens(row, r.blank, r.thr, cand.tokens)
            else:
                n_tok = _top_tokens(row, np.argsort(row), r.blank, r.topk, r.thr, cand.tokens)
        cand.stamp[0] += 1
        stamp = cand.stamp[0]
        n_c = _add_stays(row, r, beam, n_beam, nodes, cand, stamp)
        if n_tok > 0:
            cutoff = _survival_cutoff(r, cand, n_c)
            if r.ng_fill:  # first: the LM's pruning bound below needs the n-gram scores
                n_need = _ngram_misses(r, ng, vt, beam, n_beam, nodes, cand, n_tok)
                if n_need > 0:
                    return t, n_beam, n_nodes, _NEED_NG, n_need
            if r.use_lm:
                n_need = _prefixes_needing_lm(row, r, ng, vt, beam, n_beam, nodes, cand, stamp, n_tok, cutoff, max_add)
                if n_need > 0:
                    return t, n_beam, n_nodes, _NEED_LM, n_need
            n_c = _add_extensions(row, r, hot, lex, ng, vt, beam, n_beam, nodes, lm_rows, cand, stamp, n_tok, n_c,
                                  cutoff, max_add)
        n_keep = _score_candidates(r, cand, n_c)
        if n_keep > r.beam:  # step 5: cand.keep[:beam] = the best, best first (a stable sort)
            sc = np.empty(n_keep)
            for q in range(n_keep):
                sc[q] = -cand.score[cand.keep[q]]
            order = np.argsort(sc, kind="mergesort")
            tmp = np.empty(r.beam, np.int64)
            for q in range(r.beam):
                tmp[q] = cand.keep[order[q]]
            for q in range(r.beam):
                cand.keep[q] = tmp[q]
            n_keep = r.beam
        n_nodes = _commit_beam(beam, nodes, n_nodes, cand, n_keep)
        n_beam = n_keep
        t += 1
    return t, n_beam, n_nodes, _DONE, 0


# --------------------------------------------------------------------------------------------------
# Python driver
# --------------------------------------------------------------------------------------------------
def _build_trie(seqs: Iterable[Sequence[int]], V: int, boosts: Sequence[float] | None = None) -> _Trie:
    """Token trie of the sequences ``seqs`` over a V-token vocabulary; ``boosts`` (one per sequence,
    hotwords) give its nodes their bonuses (none: a lexicon)."""
    child = [[-1] * V]
    is_word = [False]
    depth = [0]
    parent = [0]
    gain = [0.0]
    kept = [0.0]
    for i, seq in enumerate(seqs):
        boost = float(boosts[i]) if boosts is not None else 0.0
        node = 0
        for tok in seq:
            nxt = child[node][tok]
            if nxt < 0:
                nxt = len(child)
                child[node][tok] = nxt
                child.append([-1] * V)
                is_word.append(False)
                depth.append(depth[node] + 1)
                parent.append(node)
                gain.append(0.0)
                kept.append(0.0)
            gain[nxt] = max(gain[nxt], boost)
            node = nxt
        if node > 0:
            is_word[node] = True
            kept[node] = max(kept[node], boost * depth[node])
    acc = [0.0] * len(child)
    for n in range(1, len(child)):  # a parent is created before its children
        acc[n] = acc[parent[n]] + gain[n]
    return _Trie(np.asarray(child, dtype=np.int32), np.asarray(is_word, dtype=bool), np.asarray(depth, dtype=np.int32),
                 np.asarray(gain, dtype=np.float64), np.asarray(acc, dtype=np.float64),
                 np.asarray(kept, dtype=np.float64))


def _hotword_boosts(hotwords, default: float) -> tuple[list[str], list[float]]:
    """Phrases and their per-token boosts from ``hotwords``: phrases (boost ``default``), (phrase,
    boost) pairs (a boost of None = ``default``), or a {phrase: boost} mapping."""
    items = hotwords.items() if isinstance(hotwords, Mapping) else hotwords
    phrases, boosts = [], []
    for h in items:
        phrase, boost = (h, None) if isinstance(h, str) else h
        if not str(phrase).strip():
            continue
        boost = default if boost is None else float(boost)
        if not (math.isfinite(boost) and boost >= 0):
            raise ConfigError(f"hotword {phrase!r}: boost {boost!r} must be a finite number >= 0")
        phrases.append(phrase)
        boosts.append(boost)
    return phrases, boosts


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

    def __init__(self, lp: np.ndarray, beam: int, n_tok: int, lm_rows_init: int, ng_start: int = 0):
        T, V = lp.shape
        self.V = V
        cap = 1 + beam + min(T, _INITIAL_FRAMES) * beam
        hcap = 1 << int(math.ceil(math.log2(4 * cap)))
        self.nodes = _Nodes(parent=np.empty(cap, np.int32), token=np.empty(cap, np.int32),
                            lm=np.empty(cap, np.float64), bonus=np.empty(cap, np.float64),
                            hw=np.empty(cap, np.int32), lex=np.empty(cap, np.int32), row=np.empty(cap, np.int32),
                            ng=np.empty(cap, np.float64), ng_hist=np.empty(cap, np.int32),
                            ng_word=np.empty(cap, np.int32), h_keys=np.full(hcap, -1, np.int64), h_vals=np.empty(hcap, np.int32))
        nc = beam * (n_tok + 1) + 1
        chcap = 1 << int(math.ceil(math.log2(4 * nc)))
        self.cand = _Candidates(
            key=np.empty(nc, np.int64), parent=np.empty(nc, np.int32), tok=np.empty(nc, np.int32),
            node=np.empty(nc, np.int32), pb=np.empty(nc), pnb=np.empty(nc), lm=np.empty(nc), bonus=np.empty(nc),
            hw=np.empty(nc, np.int32), lex=np.empty(nc, np.int32), ng=np.empty(nc),
            ng_hist=np.empty(nc, np.int32), ng_word=np.empty(nc, np.int32), score=np.empty(nc),
            slot_stamp=np.zeros(chcap, np.int64), slot_idx=np.empty(chcap, np.int32), stamp=np.zeros(1, np.int64),
            tokens=np.empty(V, np.int64), keep=np.empty(nc, np.int64), need=np.empty(beam, np.int64),
            ng_need=np.empty(beam, np.int64))
        self.beam = _Beam(node=np.zeros(beam, np.int64), pb=np.full(beam, NEG_INF), pnb=np.full(beam, NEG_INF))
        self.lm_rows = np.zeros((lm_rows_init, V), np.float32)
        self.n_rows = 0
        # root
        n = self.nodes
        n.parent[0] = -1
        n.token[0] = -1
        n.lm[0] = 0.0
        n.bonus[0] = 0.0
        n.hw[0] = 0
        n.lex[0] = 0
        n.row[0] = -1
        n.ng[0] = 0.0
        n.ng_hist[0] = ng_start
        n.ng_word[0] = 0
        self.n_nodes = 1
        self.beam.pb[0] = 0.0
        self.n_beam = 1

    def grow(self) -> None:
        cap = 2 * self.nodes.parent.shape[0]
        hcap = 1 << int(math.ceil(math.log2(4 * cap)))
        grown = {}
        for name in ("parent", "token", "lm", "bonus", "hw", "lex", "row", "ng", "ng_hist", "ng_word"):
            old = getattr(self.nodes, name)
            new = np.empty(cap, old.dtype)
            new[: self.n_nodes] = old[: self.n_nodes]
            grown[name] = new
        self.nodes = _Nodes(**grown, h_keys=np.full(hcap, -1, np.int64), h_vals=np.empty(hcap, np.int32))
        _rehash(self.nodes.h_keys, self.nodes.h_vals, self.nodes.parent, self.nodes.token, self.n_nodes, self.V)

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
            out.append(int(self.nodes.token[node]))
            node = int(self.nodes.parent[node])
        return tuple(reversed(out))


def _as_numpy_lp(log_probs) -> np.ndarray:
    if hasattr(log_probs, "detach"):
        log_probs = log_probs.detach().float().cpu().numpy()
    lp = np.ascontiguousarray(log_probs, dtype=np.float32)
    if lp.ndim != 2:
        raise ValueError(f"log_probs must be (T, V), got shape {lp.shape}")
    return lp


@dataclass(frozen=True)
class _Setup:
    """What every utterance of one call shares: the options and the kernel's view of them."""

    options: DecodeConfig
    tokenizer: Any
    lm: Any  # the fused LM scorer, or None
    V: int
    rules: _Rules
    hot: _Trie
    lex: _Trie
    ngram: Any  # the fused NgramLM, or None
    rescore_lm: Any  # the LSTM LM that rescores the N-best (lstm_mode "rescore" with an n-gram), or None
    ng: NgramTables  # its tables (a one-word dummy without one; a KenLM cache's at setup: see ng_tables)
    vt: _VocabTrie  # its vocabulary as a token trie

    def ng_tables(self) -> NgramTables:
        """The n-gram tables as they are now (a KenLM binary's cache grows as the search fills it)."""
        return self.ngram.tables if self.rules.ng_fill else self.ng


_NO_NGRAM: list = []  # the dummy n-gram tables, built once


def _vocab_trie(ngram: NgramLM, tokenizer, V: int) -> _VocabTrie:
    """The n-gram LM's vocabulary spelled in ``tokenizer``'s tokens (cached on the LM per token set);
    words the tokens cannot spell are left out (they score as OOV)."""
    from ..errors import TextError
    from ..ngram.arpa import BOS, EOS, UNK

    key = (V, tuple(tokenizer.tokens) if hasattr(tokenizer, "tokens") else id(tokenizer))
    cache = ngram.__dict__.setdefault("_vocab_tries", {})
    if key in cache:
        return cache[key]
    uni = ngram.unigram_logp()
    seqs, ids = [], []
    for w, i in ngram.vocab.items():
        if w in (BOS, EOS, UNK):
            continue
        try:
            toks = list(tokenizer.encode(w))
        except TextError:
            continue
        if toks and all(0 <= t < V for t in toks):
            seqs.append(toks)
            ids.append(i)
    trie = _build_trie(seqs, V)
    word = np.full(trie.child.shape[0], -1, np.int32)
    smear = np.full(trie.child.shape[0], -np.inf)
    for toks, i in zip(seqs, ids):
        node = 0
        for t in toks:
            node = trie.child[node, t]
            smear[node] = max(smear[node], uni[i])
        word[node] = i
    smear[0] = 0.0
    cache[key] = _VocabTrie(trie.child, word, smear, trie.depth)
    return cache[key]


def _rules(V: int, tokenizer, options: DecodeConfig, lm, hotwords: Sequence[str],
           lexicon: Iterable[str] | None, ngram: NgramLM | None = None) -> _Setup:
    """The kernel's settings for ``options`` over a V-token vocabulary. Without a tokenizer the
    blank is id 0 and the word separator id 1."""
    blank_id, space_id, word_start_ids = 0, 1, ()
    if tokenizer is not None:
        blank_id, space_id, word_start_ids = tokenizer.blank_id, tokenizer.space_id, tokenizer.word_start_ids
    is_sep = np.zeros(V, dtype=bool)
    if space_id is not None and 0 <= space_id < V:
        is_sep[space_id] = True
    word_start = np.zeros(V, dtype=bool)
    for i in word_start_ids:
        if 0 <= i < V:
            word_start[i] = True
    phrases, boosts = _hotword_boosts(hotwords, float(options.hotword_weight))
    use_hw = bool(phrases)
    use_lex = lexicon is not None
    lm = lm if options.use_lm else None
    ngram = ngram if options.use_ngram else None
    use_ng = ngram is not None
    rescore_lm = None
    if use_ng and lm is not None and options.lstm_mode == "rescore":
        rescore_lm, lm = lm, None  # the LSTM LM rescores the n-gram search's N-best (asr.decode.rescore)
    use_lm = lm is not None
    o = options
    rules = _Rules(
        blank=int(blank_id), beam=int(o.beam),
        topk=V - 1 if o.token_prune_topk is None or o.token_prune_topk >= V - 1 else int(o.token_prune_topk),
        thr=NEG_INF if o.prune_threshold is None else float(o.prune_threshold),
        skip_logp=math.log(o.blank_skip_threshold) if o.blank_skip_threshold < 1.0 else math.inf,
        beam_thr=math.inf if o.beam_threshold is None else float(o.beam_threshold),
        use_lm=use_lm, alpha=float(o.alpha) if use_lm else 0.0, beta=float(o.beta) if use_lm or use_ng else 0.0,
        is_sep=is_sep, word_start=word_start, use_hw=use_hw, hw_weight=max(boosts, default=0.0), use_lex=use_lex,
        use_ng=use_ng, ng_weight=float(o.ngram_weight) if use_ng else 0.0, unk_offset=float(o.unk_offset),
        ng_eos=int(ngram.eos) if use_ng else 0, ng_fill=bool(use_ng and ngram.filled))
    hot = _build_trie(_encode_words(phrases, tokenizer, "hotwords") if use_hw else [], V, boosts)
    lex = _build_trie(_encode_words(lexicon, tokenizer, "lexicon") if use_lex else [], V)
    if use_ng:
        if tokenizer is None:
            raise ValueError("an n-gram LM needs a tokenizer to spell its words in tokens")
        ng, vt = ngram.tables, _vocab_trie(ngram, tokenizer, V)
    else:
        if not _NO_NGRAM:
            from ..ngram.arpa import ArpaGrams

            _NO_NGRAM.append(NgramLM([ArpaGrams(1, [("</s>",)], [0.0], [0.0])]).tables)
        ng = _NO_NGRAM[0]
        vt = _VocabTrie(np.full((1, V), -1, np.int32), np.full(1, -1, np.int32), np.zeros(1), np.zeros(1, np.int32))
    return _Setup(options=o, tokenizer=tokenizer, lm=lm, V=V, rules=rules, hot=hot, lex=lex,
                  ngram=ngram if use_ng else None, rescore_lm=rescore_lm, ng=ng, vt=vt)


class _Utterance:
    """One utterance's search: runs the kernel until it needs LM output, then waits for it."""

    def __init__(self, lp: np.ndarray, setup: _Setup):
        self.lp = lp
        self.setup = setup
        r = setup.rules
        self.T = lp.shape[0]
        self.S = _Search(lp, r.beam, r.topk, lm_rows_init=(4 * r.beam + 8) if r.use_lm else 1,
                         ng_start=setup.ngram.bos_state if r.use_ng else 0)
        self.states: dict[int, Any] = {}
        self.nbest = setup.options.nbest
        if setup.rescore_lm is not None:
            self.nbest = max(self.nbest, setup.options.rescore_nbest)
        self.t = 0
        self.searched = False

    def advance(self) -> list[int] | None:
        """Prefixes whose LM output is needed next, or None when the utterance is finished."""
        u, S = self.setup, self.S
        fixed = (tuple(u.rules), tuple(u.hot), tuple(u.lex), tuple(u.ng_tables()), tuple(u.vt),
                 tuple(S.beam))  # plain tuples: numba types them fastest
        nodes, cand = tuple(S.nodes), tuple(S.cand)
        while not self.searched:
            self.t, S.n_beam, S.n_nodes, reason, n_need = _run(self.lp, self.t, self.T, *fixed, S.n_beam, nodes,
                                                               S.n_nodes, S.lm_rows, cand)
            if reason == _DONE:
                self.searched = True
            elif reason == _GROW:
                S.grow()
                nodes = tuple(S.nodes)
            elif reason == _NEED_NG:  # scored here, from Python (kenlm), then the frame is run again
                u.ngram.fill(S.cand.ng_need[:n_need])
                fixed = fixed[:3] + (tuple(u.ng_tables()),) + fixed[4:]
            else:
                return [int(n) for n in S.cand.need[:n_need]]
        if u.rules.use_lm:  # </s> needs the LM output of every final prefix
            need = [int(n) for n in S.beam.node[: S.n_beam] if S.nodes.row[n] < 0]
            if need:
                return need
        return None

    def lm_inputs(self, nodes: list[int], init_state) -> tuple[list[int], list]:
        toks, sts = [], []
        token, parent, states = self.S.nodes.token, self.S.nodes.parent, self.states
        for n in nodes:
            if n == 0:
                toks.append(LM_BOUNDARY_ID)  # <s>
                sts.append(init_state)
            else:
                toks.append(int(token[n]))
                sts.append(states[int(parent[n])])
        return toks, sts

    def lm_outputs(self, nodes: list[int], rows: np.ndarray, new_states) -> None:
        start = self.S.add_rows(rows)
        row, states = self.S.nodes.row, self.states
        for i, n in enumerate(nodes):
            row[n] = start + i
            states[n] = new_states[i]

    def hypotheses(self) -> list[Hypothesis]:
        """Final scores (</s>, unfinished hotwords, lexicon word ends), best first."""
        u, S = self.setup, self.S
        r = u.rules
        finals = []
        for i in range(S.n_beam):
            n = int(S.beam.node[i])
            am = _lse(float(S.beam.pb[i]), float(S.beam.pnb[i]))
            lm_total = float(S.nodes.lm[n])
            if r.use_lm:
                lm_total += float(S.lm_rows[S.nodes.row[n], LM_BOUNDARY_ID])
            bonus = float(S.nodes.bonus[n])
            if r.use_hw:  # the utterance's end is a word boundary
                bonus = float(_hotword_leave(u.hot, int(S.nodes.hw[n]), bonus, True))
            ok = bool(_word_complete(u.lex, int(S.nodes.lex[n]))) if r.use_lex else True
            ng_total = 0.0
            if r.use_ng:  # the utterance's end completes the last word, then </s>
                hist, wnode = int(S.nodes.ng_hist[n]), int(S.nodes.ng_word[n])
                if r.ng_fill:
                    key = int(_word_end_key(u.ng_tables(), u.vt, hist, wnode))
                    if key >= 0:
                        u.ngram.fill([key])
                ng = u.ng_tables()
                hist, ng_total = _ngram_word_end(ng, u.vt, r, hist, wnode, float(S.nodes.ng[n]))
                if r.ng_fill:
                    u.ngram.fill([hist * ng.W + r.ng_eos])
                    ng = u.ng_tables()
                ng_total += ngram_score(ng, hist, r.ng_eos)[0]
            finals.append((am + r.alpha * lm_total + r.ng_weight * ng_total + bonus, am, lm_total, bonus, ok, n,
                           ng_total))
        if r.use_lex and any(f[4] for f in finals):
            finals = [f for f in finals if f[4]]
        finals.sort(key=lambda f: -f[0])
        out, seen = [], set()
        for score, am, lm_total, bonus, _, n, ng_total in finals:
            if len(out) == self.nbest:
                break
            toks = S.tokens_of(n)
            text = u.tokenizer.decode(toks) if u.tokenizer is not None else ""
            if u.tokenizer is not None:
                # token sequences that read the same (a trailing or doubled space, BPE pieces split
                # differently) are one hypothesis to a user: the best-scoring one stands for them
                if text in seen:
                    continue
                seen.add(text)
            out.append(Hypothesis(tokens=toks, text=text, score=score, am_score=am,
                                  lm_score=lm_total if r.use_lm else 0.0, bonus=bonus, ngram_score=ng_total))
        return out


def _decode(lps: list[np.ndarray], setup: _Setup) -> list[list[Hypothesis]]:
    """Run all utterances in lockstep: each LM round is ONE ``score_batch`` over every utterance's
    pending prefixes (so a batch of B utterances costs about one LM call per frame, not B)."""
    utts = [_Utterance(lp, setup) for lp in lps]
    lm = setup.lm
    init_state = lm.initial_state() if lm is not None else None
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
        if rows.ndim != 2 or rows.shape != (len(toks), setup.V):
            raise ASRError(f"the LM returned scores of shape {rows.shape} for {len(toks)} prefixes, expected "
                           f"({len(toks)}, {setup.V}): it was trained on a different token set than the acoustic "
                           "model (retrain it with the model's tokens.txt)")
        k = 0
        for u, nodes in reqs:
            u.lm_outputs(nodes, rows[k: k + len(nodes)], new_states[k: k + len(nodes)])
            k += len(nodes)
        pending = [u for u, _ in reqs]
    hyps = [u.hypotheses() for u in utts]
    if setup.rescore_lm is not None:
        from .rescore import rescore

        hyps = rescore(hyps, setup.rescore_lm, setup.options.alpha, setup.options.nbest)
    return hyps


def beam_search(log_probs, tokenizer, options: DecodeConfig, lm=None, hotwords: Sequence[str] = (),
                lexicon: Iterable[str] | None = None, ngram: NgramLM | None = None, **overrides) -> list[Hypothesis]:
    """CTC prefix beam search (optionally with LM shallow fusion) over one utterance.

    * ``log_probs``: (T, V) log-softmax output (numpy, or a torch tensor).
    * ``tokenizer``: gives ``decode`` for the text and the word-boundary tokens (``blank_id``,
      ``space_id``, ``word_start_ids``); None = ids only (blank 0, separator 1, text "").
    * ``options``: the :class:`~asr.decode.config.DecodeConfig` whose beam, nbest, alpha, beta,
      use_lm, pruning and hotword settings are used (``method`` and ``batch_frames`` are the
      caller's); ``**overrides`` replace fields of it (``beam=4``), checked like the config.
    * ``lm``: scorer with ``initial_state`` / ``score_batch`` (see module doc), fused when
      ``options.use_lm``; without one ``alpha`` and ``beta`` do nothing.
    * ``ngram``: a word :class:`~asr.ngram.model.NgramLM`, fused at word boundaries with weight
      ``ngram_weight`` (partial words: the best unigram under the prefix; OOV: ``unk_offset``) when
      ``options.use_ngram``; with ``lm`` too, the LSTM LM is fused per token or rescores the
      N-best (``lstm_mode``).
    * ``hotwords`` (words or phrases; or (phrase, boost) pairs, or a {phrase: boost} mapping) earn
      their boost (default ``hotword_weight``) per matched token while being spelled, taken back if
      the word ends unfinished; ``lexicon`` (word list): prefixes may only spell words from it.

    Returns up to ``nbest`` hypotheses (at most ``beam``), best first.
    """
    lp = _as_numpy_lp(log_probs)
    if overrides:
        options = dataclasses.replace(options, **overrides)
    setup = _rules(lp.shape[1], tokenizer, options, lm, hotwords, lexicon, ngram)
    return _decode([lp], setup)[0]


def beam_search_batch(log_probs, tokenizer, options: DecodeConfig, lm=None, hotwords: Sequence[str] = (),
                      lexicon: Iterable[str] | None = None, lengths=None, ngram: NgramLM | None = None,
                      **overrides) -> list[list[Hypothesis]]:
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
    if overrides:
        options = dataclasses.replace(options, **overrides)
    if not lps:
        return []
    V = lps[0].shape[1]
    if any(x.shape[1] != V for x in lps):
        raise ValueError("all utterances must have the same vocabulary size")
    return _decode(lps, _rules(V, tokenizer, options, lm, hotwords, lexicon, ngram))


def warmup() -> None:
    """Compile (or load from the numba cache) the kernel on a tiny input."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    x -= np.log(np.exp(x).sum(-1, keepdims=True))
    beam_search(x, None, DecodeConfig(method="beam"), beam=2)
