"""CTC prefix beam search: exactness, greedy equivalence, LM fusion, hotwords, lexicon, N-best."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from asr.decode import beam as beam_mod
from asr.decode.beam import Hypothesis, beam_search, beam_search_batch
from asr.decode.greedy import collapse, greedy_decode
from asr.text import CharTokenizer

TOK = CharTokenizer()
EXACT = dict(token_prune_topk=None, prune_threshold=None, beam_threshold=None, blank_skip_threshold=1.0)


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return (x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))).astype(np.float32)


def spell(frames: list[dict[str, float]], V: int = TOK.vocab_size, floor: float = 1e-4) -> np.ndarray:
    """Emission matrix from per-frame {char: prob} ("_" = blank, " " = word boundary)."""
    out = np.full((len(frames), V), floor, np.float64)
    for t, fr in enumerate(frames):
        for ch, p in fr.items():
            out[t, 0 if ch == "_" else TOK.encode(ch)[0] if ch != " " else TOK.space_id] = p
    out /= out.sum(1, keepdims=True)
    return np.log(out).astype(np.float32)


def text_frames(text: str) -> list[dict[str, float]]:
    """A confident spelling of ``text`` with a blank between characters."""
    fr = []
    for ch in text:
        fr += [{ch: 0.97}, {"_": 0.97}]
    return fr


def ambiguous(prefix: str, a: str, b: str, pa: float, suffix: str) -> np.ndarray:
    """``prefix`` + one frame that is ``a`` with prob pa or ``b`` + ``suffix``."""
    return spell(text_frames(prefix) + [{a: pa, b: 0.99 - pa}, {"_": 0.97}] + text_frames(suffix))


class BigramLM:
    """A hand-built character bigram LM implementing the fusion interface (state = last token)."""

    def __init__(self, prefs: dict[tuple[str, str], float], V: int = TOK.vocab_size):
        self.V = V
        self.table = np.full((V, V), math.log(1.0 / V), np.float32)
        for (prev, nxt), lp in prefs.items():
            p = 0 if prev == "<s>" else TOK.encode(prev)[0] if prev != " " else 1
            n = 0 if nxt == "</s>" else TOK.encode(nxt)[0] if nxt != " " else 1
            self.table[p, n] = lp
        self.calls = 0
        self.batch_sizes: list[int] = []

    def initial_state(self):
        return None

    def score_batch(self, states, tokens):
        self.calls += 1
        self.batch_sizes.append(len(states))
        tokens = np.asarray(tokens)
        return self.table[tokens], [int(t) for t in tokens]


def exact_prefix_probs(lp: np.ndarray) -> dict[tuple[int, ...], float]:
    T, V = lp.shape
    probs: dict[tuple[int, ...], float] = {}
    for al in itertools.product(range(V), repeat=T):
        key = tuple(collapse(al))
        probs[key] = probs.get(key, 0.0) + math.exp(sum(float(lp[t, a]) for t, a in enumerate(al)))
    return probs


def ctc_log_prob(lp: np.ndarray, tokens) -> float:
    if not tokens:
        return float(lp[:, 0].sum())
    loss = torch.nn.functional.ctc_loss(torch.from_numpy(lp)[:, None], torch.tensor([list(tokens)]),
                                        torch.tensor([lp.shape[0]]), torch.tensor([len(tokens)]),
                                        reduction="sum")
    return -float(loss)


def test_exact_on_tiny_input_matches_enumeration():
    rng = np.random.default_rng(1)
    for _ in range(3):
        lp = log_softmax(rng.standard_normal((6, 4)) * 1.5)
        probs = exact_prefix_probs(lp)
        hyps = beam_search(lp, beam=500, nbest=6, space_id=None, **EXACT)
        ranked = sorted(probs.items(), key=lambda kv: -kv[1])[:6]
        assert [h.tokens for h in hyps] == [k for k, _ in ranked]
        for h, (_, p) in zip(hyps, ranked):
            assert h.am_score == pytest.approx(math.log(p), abs=1e-5)


def test_beam1_equals_greedy_on_peaky_emissions():
    rng = np.random.default_rng(0)
    for _ in range(50):
        T = int(rng.integers(1, 120))
        z = rng.standard_normal((T, 29))
        z[np.arange(T), rng.integers(0, 29, T)] += 10.0
        lp = log_softmax(z)
        assert beam_search(lp, beam=1)[0].tokens == tuple(greedy_decode(lp)[0])


def _lse(*a):
    m = max(a)
    return m if m == -math.inf else m + math.log(sum(math.exp(x - m) for x in a))


def reference_prefix_beam(lp: np.ndarray, beam: int, lm_table=None, alpha=0.0, beta=0.0,
                          space=1) -> list[tuple[tuple[int, ...], float]]:
    """Textbook prefix beam search (dict of prefix -> (pb, pnb)), no pruning; optional bigram LM.

    Returns (prefix, fused score) best first; with an LM the score includes </s>.
    """
    def fuse(k):  # alpha * log P_lm(k) + beta * words(k)
        if lm_table is None:
            return 0.0
        seq = [0, *k]
        lmsc = sum(float(lm_table[a, b]) for a, b in zip(seq[:-1], seq[1:]))
        words = sum(1 for i, c in enumerate(k) if c != space and (i == 0 or k[i - 1] == space))
        return alpha * lmsc + beta * words

    beams = {(): (0.0, -math.inf)}
    for t in range(lp.shape[0]):
        nb: dict = {}

        def add(k, pb, pnb):
            o = nb.get(k, (-math.inf, -math.inf))
            nb[k] = (_lse(o[0], pb), _lse(o[1], pnb))

        for k, (pb, pnb) in beams.items():
            tot = _lse(pb, pnb)
            add(k, tot + lp[t, 0], -math.inf)
            if k:
                add(k, -math.inf, pnb + lp[t, k[-1]])
            for c in range(1, lp.shape[1]):
                add(k + (c,), -math.inf, (pb if k and c == k[-1] else tot) + lp[t, c])
        beams = dict(sorted(nb.items(), key=lambda kv: -(_lse(*kv[1]) + fuse(kv[0])))[:beam])

    def final(k, v):
        eos = alpha * float(lm_table[k[-1] if k else 0, 0]) if lm_table is not None else 0.0
        return _lse(*v) + fuse(k) + eos

    return sorted(((k, final(k, v)) for k, v in beams.items()), key=lambda kv: -kv[1])


def test_matches_reference_prefix_beam_search():
    rng = np.random.default_rng(2)
    for beam in (1, 3, 8):
        lp = log_softmax(rng.standard_normal((30, 7)) * 2)
        ref = reference_prefix_beam(lp.astype(np.float64), beam)
        hyps = beam_search(lp, beam=beam, nbest=beam, space_id=None, **EXACT)
        assert [h.tokens for h in hyps] == [k for k, _ in ref]
        assert [h.am_score for h in hyps] == pytest.approx([s for _, s in ref], abs=1e-4)


def test_lm_fusion_matches_reference_with_exact_pruning():
    """The kernel's bound-based pruning (no LM call for hopeless prefixes) changes nothing."""
    rng = np.random.default_rng(7)
    for beam, alpha, beta in ((2, 0.5, 0.0), (6, 1.0, 0.7), (10, 0.3, 2.0)):
        lp = log_softmax(rng.standard_normal((25, 6)) * 2.5)
        lm = BigramLM({}, V=6)
        lm.table = log_softmax(rng.standard_normal((6, 6)) * 2)
        ref = reference_prefix_beam(lp.astype(np.float64), beam, lm.table.astype(np.float64), alpha, beta)
        hyps = beam_search(lp, beam=beam, nbest=beam, lm=lm, alpha=alpha, beta=beta, **EXACT)
        assert [h.tokens for h in hyps] == [k for k, _ in ref]
        assert [h.score for h in hyps] == pytest.approx([s for _, s in ref], abs=1e-4)


def test_text_and_empty_input():
    lp = spell(text_frames("the cat"))
    assert beam_search(lp, TOK, beam=4)[0].text == "the cat"
    h = beam_search(np.zeros((0, 29), np.float32), TOK)[0]
    assert h.tokens == () and h.text == ""
    blank_only = spell([{"_": 0.99}] * 5)
    assert beam_search(blank_only, TOK)[0].tokens == ()


def test_lm_fixes_ambiguous_word_and_is_batched():
    lp = ambiguous("the c", "o", "a", 0.6, "t")  # acoustics prefer "cot"
    assert beam_search(lp, TOK, beam=8)[0].text == "the cot"
    lm = BigramLM({("c", "a"): math.log(0.5), ("c", "o"): math.log(0.01)})
    hyps = beam_search(lp, TOK, beam=8, lm=lm, alpha=1.0, beta=0.0, nbest=2)
    assert hyps[0].text == "the cat"
    assert hyps[1].text == "the cot"
    # one LM call per frame at most (+1 for </s>), and calls are batched
    assert lm.calls <= lp.shape[0] + 1
    assert max(lm.batch_sizes) > 1


def test_scores_are_consistent_and_nbest_sorted():
    rng = np.random.default_rng(3)
    lp = log_softmax(rng.standard_normal((40, 29)) * 2.5)
    lm = BigramLM({})
    lm.table = log_softmax(rng.standard_normal((29, 29)))
    alpha, beta = 0.7, 0.4
    hyps = beam_search(lp, TOK, beam=12, lm=lm, alpha=alpha, beta=beta, nbest=12, **EXACT)
    assert len(hyps) == 12
    scores = [h.score for h in hyps]
    assert scores == sorted(scores, reverse=True)
    assert len({h.tokens for h in hyps}) == len(hyps)
    for h in hyps:
        seq = [0, *h.tokens, 0]
        lm_lp = sum(float(lm.table[a, b]) for a, b in zip(seq[:-1], seq[1:]))
        words = len(h.text.split())
        assert isinstance(h, Hypothesis)
        assert h.lm_score == pytest.approx(lm_lp, abs=1e-3)
        assert h.bonus == pytest.approx(beta * words, abs=1e-6)
        # alignments lost while a prefix was outside the beam make am_score a lower bound
        assert h.am_score <= ctc_log_prob(lp, h.tokens) + 1e-3
        assert h.score == pytest.approx(h.am_score + alpha * h.lm_score + h.bonus, abs=1e-6)


def test_hotword_boost_changes_result():
    lp = ambiguous("a c", "o", "a", 0.7, "t")
    assert beam_search(lp, TOK, beam=8)[0].text == "a cot"
    boosted = beam_search(lp, TOK, beam=8, hotwords=["cat"], hotword_weight=1.5)[0]
    assert boosted.text == "a cat"
    assert boosted.bonus == pytest.approx(1.5 * 3)
    # a hotword that only partly matches earns nothing in the end
    partial = beam_search(lp, TOK, beam=8, hotwords=["cattle"], hotword_weight=1.5)[0]
    assert partial.text == "a cot" or partial.bonus == pytest.approx(0.0)


def test_lexicon_constraint():
    lp = ambiguous("the c", "o", "a", 0.8, "t")
    assert beam_search(lp, TOK, beam=8)[0].text == "the cot"
    hyps = beam_search(lp, TOK, beam=8, lexicon=["the", "cat", "mat"], nbest=4)
    assert hyps[0].text == "the cat"
    words = {"the", "cat", "mat"}
    assert all(set(h.text.split()) <= words for h in hyps)


def test_pruning_options_keep_result_on_clear_input():
    lp = spell(text_frames("hello world"))
    for kw in (dict(token_prune_topk=2), dict(prune_threshold=-3.0), dict(blank_skip_threshold=0.9),
               dict(beam_threshold=5.0), EXACT):
        assert beam_search(lp, TOK, beam=5, **kw)[0].text == "hello world"


def test_node_storage_grows(monkeypatch):
    monkeypatch.setattr(beam_mod, "_INITIAL_FRAMES", 2)
    rng = np.random.default_rng(4)
    lp = log_softmax(rng.standard_normal((80, 29)) * 3)
    lm = BigramLM({})
    lm.table = log_softmax(rng.standard_normal((29, 29)))
    small = beam_search(lp, TOK, beam=6, lm=lm, nbest=3)
    monkeypatch.setattr(beam_mod, "_INITIAL_FRAMES", 4096)
    big = beam_search(lp, TOK, beam=6, lm=lm, nbest=3)
    assert [h.tokens for h in small] == [h.tokens for h in big]
    assert [h.score for h in small] == pytest.approx([h.score for h in big])


def test_batch_helper_matches_single():
    rng = np.random.default_rng(5)
    x = np.stack([log_softmax(rng.standard_normal((30, 29)) * 3) for _ in range(3)])
    lengths = [30, 17, 5]
    out = beam_search_batch(torch.from_numpy(x), torch.tensor(lengths), TOK, beam=4)
    for i, n in enumerate(lengths):
        assert out[i][0].tokens == beam_search(x[i, :n], TOK, beam=4)[0].tokens


def test_lm_with_other_token_set_is_refused():
    from asr.errors import ASRError

    lm = BigramLM({}, V=12)
    with pytest.raises(ASRError, match="token set"):
        beam_search(spell(text_frames("a b")), TOK, lm=lm)


def test_batch_with_lm_shares_lm_calls_and_matches_single():
    rng = np.random.default_rng(6)
    lps = [log_softmax(rng.standard_normal((n, 29)) * 3) for n in (40, 25, 60, 1)]
    table = log_softmax(rng.standard_normal((29, 29)))
    singles, calls = [], []
    for x in lps:
        lm = BigramLM({})
        lm.table = table
        singles.append(beam_search(x, TOK, beam=5, lm=lm, alpha=0.6, beta=0.3, nbest=3))
        calls.append(lm.calls)
    lm = BigramLM({})
    lm.table = table
    batch = beam_search_batch(lps, tokenizer=TOK, beam=5, lm=lm, alpha=0.6, beta=0.3, nbest=3)
    for a, b in zip(singles, batch):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b])
    assert lm.calls <= max(calls) + 1 < sum(calls)


def test_bpe_word_bonus_and_text():
    from asr.text import BPETokenizer

    texts = ["the cat sat on the mat", "a dog ran to the cat", "the rat and the bat sat"] * 20
    bpe = BPETokenizer.train(texts, vocab_size=40)
    ids = bpe.encode("the cat sat")
    V = bpe.vocab_size
    p = np.full((2 * len(ids), V), 1e-4)
    for k, i in enumerate(ids):
        p[2 * k, i] = 1.0
        p[2 * k + 1, 0] = 1.0
    lp = np.log(p / p.sum(1, keepdims=True)).astype(np.float32)
    lm = BigramLM({}, V=V)
    h = beam_search(lp, bpe, beam=4, lm=lm, alpha=0.1, beta=0.7)[0]
    assert h.text == "the cat sat"
    assert h.bonus == pytest.approx(0.7 * 3)
