"""CTC forced alignment of a token sequence to emissions, and words with times and confidences.

``forced_align(log_probs, tokens)`` is the Viterbi alignment over the CTC topology (blank, t1,
blank, t2, ..., tL, blank; a state may repeat, step to the next, or skip a blank between two
different tokens), as ``torchaudio.functional.forced_align`` computes it: the most likely
frame-by-frame path that collapses to ``tokens``. It gives each token's frame span and the path's
per-frame labels. ``ctc_log_likelihood`` is the same trellis summed instead of maximised
(log P_ctc(tokens | x) over all alignments, the beam search's ``am_score``).

``align_words(log_probs, tokens, tokenizer, frame_shift, offset)`` turns the alignment into
:class:`Word` entries: a word is a run of tokens between separators (``|`` for character models)
or from one word-start piece (``▁...``) to the next (BPE). Its ``start`` is the first frame of its
first token; its ``end`` is the first frame of the separator that follows it (character models),
else the end of the last frame of its last token; in seconds of the input (``offset`` + frame *
``frame_shift``). Why the separator: a CTC model spikes on a token near its onset, so the last
letter's frames end well before a word does (60-270 ms early for the tts_en model, most for words
ending in a long vowel, as "the" or "me"), while the model emits the separator right where the word
ends (within 30 ms on words synthesised alone with silences between them). The last word, which no
separator follows, keeps its last token's end (tens of milliseconds early, more after a vowel).

**Confidence** of a word = the arithmetic mean over its tokens of each token's *peak* posterior,
the highest frame posterior P(token | frame) over the frames the alignment gives the token. Why: a
CTC model emits each token as a spike, so the peak is the model's belief that the token is there
at all, while the blank frames around it say nothing about the word (a mean over frames is
diluted by them and weights long tokens more); averaging over tokens counts every letter or piece
once. The minimum over tokens is harsher and separates right from wrong words slightly better
with greedy decoding, but with the LM choosing the hypothesis one token the LM put in (against
the acoustics) makes right words look wrong. On the tts_en recipe's test split the token-mean
gives the best ROC AUC with the package's beam+LM decoding and is within 0.015 of the best with
greedy (``tools/word_confidence.py`` measures five definitions; README, "Word times"). It lies in
[0, 1].

numpy only (the torch-free runtime uses it): one vectorised step per frame over the 2L+1 states.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import ASRError


@dataclass(frozen=True)
class Word:
    """One recognised word with its time in the input and the model's confidence in it."""

    word: str  # the word's text
    start: float  # seconds from the start of the input
    end: float  # seconds from the start of the input (> start)
    confidence: float  # in [0, 1]: mean over the word's tokens of the token's peak frame posterior

    def shifted(self, seconds: float) -> "Word":
        """The same word ``seconds`` later (a segment's words placed in the whole input)."""
        return Word(self.word, self.start + seconds, self.end + seconds, self.confidence)


@dataclass(frozen=True)
class Alignment:
    """The Viterbi CTC path of a token sequence."""

    labels: np.ndarray  # (T,) int: the label each frame is aligned to (blank or a token)
    spans: np.ndarray  # (L, 2) int: frames [start, end) of each token (end exclusive)
    score: float  # log-probability of the path


def _extended(tokens: np.ndarray, blank: int) -> tuple[np.ndarray, np.ndarray]:
    """CTC states [blank, t1, blank, ..., tL, blank] and where a blank may be skipped."""
    S = 2 * len(tokens) + 1
    ext = np.full(S, blank, dtype=np.int64)
    ext[1::2] = tokens
    skip = np.zeros(S, dtype=bool)
    if len(tokens) > 1:
        skip[3::2] = tokens[1:] != tokens[:-1]
    return ext, skip


def _shifted(alpha: np.ndarray, k: int) -> np.ndarray:
    """``alpha`` moved ``k`` states on (the first ``k`` are -inf)."""
    out = np.full(len(alpha), -np.inf)
    out[k:] = alpha[: len(alpha) - k]
    return out


def _check(lp: np.ndarray, tokens: np.ndarray, blank: int) -> None:
    if lp.ndim != 2:
        raise ASRError(f"emissions must be (frames, vocabulary), got shape {lp.shape}")
    if len(tokens) and (tokens.min() < 0 or tokens.max() >= lp.shape[1] or (tokens == blank).any()):
        raise ASRError(f"tokens {tokens.tolist()} must be ids in 1..{lp.shape[1] - 1} other than the blank {blank}")
    need = len(tokens) + int(np.sum(tokens[1:] == tokens[:-1])) if len(tokens) else 0
    if need > lp.shape[0]:
        raise ASRError(f"{len(tokens)} tokens need at least {need} frames to align, the emissions have "
                       f"{lp.shape[0]}")


def forced_align(log_probs, tokens: Sequence[int], blank_id: int = 0) -> Alignment:
    """Viterbi alignment of ``tokens`` (collapsed ids, no blanks) to ``log_probs`` (T, V)."""
    lp = np.asarray(log_probs, dtype=np.float64)
    toks = np.asarray(tokens, dtype=np.int64).reshape(-1)
    _check(lp, toks, blank_id)
    T = lp.shape[0]
    if T == 0:
        return Alignment(np.zeros(0, np.int64), np.zeros((0, 2), np.int64), 0.0)
    ext, skip = _extended(toks, blank_id)
    S = len(ext)
    emit = lp[:, ext]  # (T, S)
    back = np.zeros((T, S), dtype=np.int8)  # states stepped back to reach s at t: 0, 1 or 2
    alpha = np.full(S, -np.inf)
    alpha[0] = emit[0, 0]
    if S > 1:
        alpha[1] = emit[0, 1]
    for t in range(1, T):
        cand = np.stack([alpha, _shifted(alpha, 1), np.where(skip, _shifted(alpha, 2), -np.inf)])
        best = cand.argmax(0)
        back[t] = best
        alpha = cand[best, np.arange(S)] + emit[t]
    s = S - 1 if S == 1 or alpha[S - 1] >= alpha[S - 2] else S - 2
    score = float(alpha[s])
    states = np.empty(T, dtype=np.int64)
    for t in range(T - 1, -1, -1):
        states[t] = s
        s -= int(back[t, s])
    labels = ext[states]
    spans = np.zeros((len(toks), 2), dtype=np.int64)
    tok_frames = np.flatnonzero(states % 2 == 1)
    idx = states[tok_frames] // 2
    if len(toks):
        first = np.r_[True, idx[1:] != idx[:-1]]
        last = np.r_[idx[1:] != idx[:-1], True]
        spans[idx[first], 0] = tok_frames[first]
        spans[idx[last], 1] = tok_frames[last] + 1
    return Alignment(labels, spans, score)


def ctc_log_likelihood(log_probs, tokens: Sequence[int], blank_id: int = 0) -> float:
    """log P_ctc(tokens | x): the forward algorithm over every alignment (-inf if none fits)."""
    lp = np.asarray(log_probs, dtype=np.float64)
    toks = np.asarray(tokens, dtype=np.int64).reshape(-1)
    if lp.shape[0] == 0:
        return 0.0 if len(toks) == 0 else -np.inf
    ext, skip = _extended(toks, blank_id)
    S = len(ext)
    emit = lp[:, ext]
    alpha = np.full(S, -np.inf)
    alpha[0] = emit[0, 0]
    if S > 1:
        alpha[1] = emit[0, 1]
    for t in range(1, lp.shape[0]):
        jump = np.where(skip, _shifted(alpha, 2), -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, _shifted(alpha, 1)), jump) + emit[t]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if S > 1 else alpha[-1])


def word_token_ranges(tokens: Sequence[int], tokenizer) -> list[tuple[int, int]]:
    """Token index ranges [a, b) of the words of a collapsed token sequence: runs between
    separators (``space_id``) for character models, from one word-start piece to the next for BPE.
    Ranges that decode to no text (a bare ``▁``, ``<unk>``) are dropped."""
    sep = tokenizer.space_id
    starts = tokenizer.word_start_ids
    out: list[tuple[int, int]] = []
    a = None
    for i, t in enumerate(tokens):
        t = int(t)
        if t == sep:
            if a is not None:
                out.append((a, i))
            a = None
            continue
        if a is None:
            a = i
        elif t in starts:
            out.append((a, i))
            a = i
    if a is not None:
        out.append((a, len(tokens)))
    return [(a, b) for a, b in out if tokenizer.decode(tokens[a:b])]


def align_words(log_probs, tokens: Sequence[int], tokenizer, frame_shift: float, offset: float = 0.0) -> list[Word]:
    """Words of ``tokens`` with start/end seconds (``offset`` + frames * ``frame_shift``) and
    confidences, from the forced alignment of ``tokens`` to ``log_probs`` (see the module doc)."""
    tokens = [int(t) for t in tokens]
    if not tokens:
        return []
    lp = np.asarray(log_probs, dtype=np.float32)
    al = forced_align(lp, tokens, tokenizer.blank_id)
    peak = np.array([float(np.exp(lp[s:e, t].max())) for t, (s, e) in zip(tokens, al.spans)])
    words = []
    for a, b in word_token_ranges(tokens, tokenizer):
        start, end = int(al.spans[a, 0]), int(al.spans[b - 1, 1])
        if b < len(tokens) and tokens[b] == tokenizer.space_id:  # the separator marks the word's end
            end = int(al.spans[b, 0])
        conf = float(np.clip(peak[a:b].mean(), 0.0, 1.0))
        words.append(Word(tokenizer.decode(tokens[a:b]), offset + start * frame_shift, offset + end * frame_shift,
                          conf))
    return words
