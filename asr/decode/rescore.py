"""N-best rescoring with the token (LSTM) LM: the n-gram beam search's hypotheses, re-ranked by
``score + alpha * log P_lstm(tokens, </s>)`` (``lstm_mode: rescore`` in the decode config)."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from ..tokens import LM_BOUNDARY_ID


def sequence_log_probs(lm, seqs: Sequence[Sequence[int]]) -> np.ndarray:
    """ln P_lm(seq, </s>) of each token sequence under ``lm`` (the beam search's LM interface), all
    sequences stepped together: one ``score_batch`` per position."""
    n = len(seqs)
    out = np.zeros(n)
    if n == 0:
        return out
    states = [lm.initial_state()] * n
    feed = np.full(n, LM_BOUNDARY_ID, np.int64)  # <s>
    active = list(range(n))
    k = 0
    while active:
        rows, new_states = lm.score_batch([states[i] for i in active], feed[active])
        rows = np.asarray(rows)
        still = []
        for r, i in enumerate(active):
            seq = seqs[i]
            if k < len(seq):
                out[i] += float(rows[r, seq[k]])
                states[i] = new_states[r]
                feed[i] = seq[k]
                still.append(i)
            else:
                out[i] += float(rows[r, LM_BOUNDARY_ID])  # </s>
        active = still
        k += 1
    return out


def rescore(nbests: list[list], lm, alpha: float, nbest: int) -> list[list]:
    """Each utterance's hypotheses re-ranked with ``alpha`` times the LM's sentence log-prob
    (stored as their ``lm_score``); the best ``nbest`` of each, best first."""
    flat = [h for hyps in nbests for h in hyps]
    lps = sequence_log_probs(lm, [h.tokens for h in flat])
    out, k = [], 0
    for hyps in nbests:
        new = [dataclasses.replace(h, lm_score=float(lps[k + i]), score=h.score + alpha * float(lps[k + i]))
               for i, h in enumerate(hyps)]
        k += len(hyps)
        new.sort(key=lambda h: -h.score)
        out.append(new[:nbest])
    return out
