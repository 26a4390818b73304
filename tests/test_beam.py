"""CTC prefix beam search: exactness, greedy equivalence, LM fusion, hotwords, lexicon, N-best."""
from __future__ import annotations

import itertools
import math
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from asr.decode import beam as beam_mod
from asr.decode.beam import Hypothesis, beam_search, beam_search_batch
from asr.decode.config import DecodeConfig
from asr.decode.greedy import collapse, greedy_decode
from asr.errors import ConfigError
from asr.text import CharTokenizer

TOK = CharTokenizer()
BEAM = DecodeConfig(method="beam")  # the default pruning
EXACT = DecodeConfig(method="beam", token_prune_topk=None, prune_threshold=None, beam_threshold=None,
                     blank_skip_threshold=1.0)  # no pruning but the exact bound


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
        hyps = beam_search(lp, None, EXACT, beam=500, nbest=6)
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
        assert beam_search(lp, None, BEAM, beam=1)[0].tokens == tuple(greedy_decode(lp)[0])


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
        hyps = beam_search(lp, None, EXACT, beam=beam, nbest=beam)
        assert [h.tokens for h in hyps] == [k for k, _ in ref]
        assert [h.am_score for h in hyps] == pytest.approx([s for _, s in ref], abs=1e-4)


def test_lm_fusion_matches_reference_with_exact_pruning():
    """The kernel's bound-based pruning (no LM call for hopeless prefixes) changes nothing, also with
    a negative word bonus (the tuner tries beta = -1: a token that begins no word then adds more
    than beta, so the bound uses max(beta, 0))."""
    rng = np.random.default_rng(7)
    for beam, alpha, beta in ((2, 0.5, 0.0), (6, 1.0, 0.7), (10, 0.3, 2.0), (4, 0.8, -1.0), (6, 0.5, -2.5)):
        lp = log_softmax(rng.standard_normal((25, 6)) * 2.5)
        lm = BigramLM({}, V=6)
        lm.table = log_softmax(rng.standard_normal((6, 6)) * 2)
        ref = reference_prefix_beam(lp.astype(np.float64), beam, lm.table.astype(np.float64), alpha, beta)
        hyps = beam_search(lp, None, EXACT, lm=lm, beam=beam, nbest=beam, alpha=alpha, beta=beta)
        assert [h.tokens for h in hyps] == [k for k, _ in ref]
        assert [h.score for h in hyps] == pytest.approx([s for _, s in ref], abs=1e-4)


def test_text_and_empty_input():
    lp = spell(text_frames("the cat"))
    assert beam_search(lp, TOK, BEAM, beam=4)[0].text == "the cat"
    h = beam_search(np.zeros((0, 29), np.float32), TOK, BEAM)[0]
    assert h.tokens == () and h.text == ""
    blank_only = spell([{"_": 0.99}] * 5)
    assert beam_search(blank_only, TOK, BEAM)[0].tokens == ()


def test_lm_fixes_ambiguous_word_and_is_batched():
    lp = ambiguous("the c", "o", "a", 0.6, "t")  # acoustics prefer "cot"
    assert beam_search(lp, TOK, BEAM, beam=8)[0].text == "the cot"
    lm = BigramLM({("c", "a"): math.log(0.5), ("c", "o"): math.log(0.01)})
    hyps = beam_search(lp, TOK, BEAM, lm=lm, beam=8, alpha=1.0, beta=0.0, nbest=2)
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
    hyps = beam_search(lp, TOK, EXACT, lm=lm, beam=12, alpha=alpha, beta=beta, nbest=12)
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


def test_nbest_holds_each_text_once():
    """'cat' and 'cat ' (a trailing word boundary) are different CTC prefixes that read the same:
    the N-best lists the text once, with the better of the two scores."""
    lp = spell(text_frames("cat") + [{" ": 0.45, "_": 0.54}])
    prefixes = beam_search(lp, None, EXACT, beam=8, nbest=8)  # no tokenizer, no texts: every prefix
    same = [h for h in prefixes if TOK.decode(h.tokens) == "cat"]
    assert len(prefixes) == 8 and len(same) == 2  # both spellings of "cat" are in the beam
    hyps = beam_search(lp, TOK, EXACT, beam=8, nbest=8)
    texts = [h.text for h in hyps]
    assert len(texts) == len(set(texts)) == len({TOK.decode(h.tokens) for h in prefixes}), texts
    assert texts[0] == "cat" and hyps[0].score == pytest.approx(max(h.score for h in same))


def test_hotword_boost_changes_result():
    lp = ambiguous("a c", "o", "a", 0.7, "t")
    assert beam_search(lp, TOK, BEAM, beam=8)[0].text == "a cot"
    boosted = beam_search(lp, TOK, BEAM, hotwords=["cat"], beam=8, hotword_weight=1.5)[0]
    assert boosted.text == "a cat"
    assert boosted.bonus == pytest.approx(1.5 * 3)
    # a hotword that only partly matches earns nothing in the end
    partial = beam_search(lp, TOK, BEAM, hotwords=["cattle"], beam=8, hotword_weight=1.5)[0]
    assert partial.text == "a cot" or partial.bonus == pytest.approx(0.0)


def test_lexicon_constraint():
    lp = ambiguous("the c", "o", "a", 0.8, "t")
    assert beam_search(lp, TOK, BEAM, beam=8)[0].text == "the cot"
    hyps = beam_search(lp, TOK, BEAM, lexicon=["the", "cat", "mat"], beam=8, nbest=4)
    assert hyps[0].text == "the cat"
    words = {"the", "cat", "mat"}
    assert all(set(h.text.split()) <= words for h in hyps)


def test_pruning_options_keep_result_on_clear_input():
    lp = spell(text_frames("hello world"))
    for opts in (replace(BEAM, token_prune_topk=2), replace(BEAM, prune_threshold=-3.0),
                 replace(BEAM, blank_skip_threshold=0.9), replace(BEAM, beam_threshold=5.0), EXACT):
        assert beam_search(lp, TOK, opts, beam=5)[0].text == "hello world"


def test_node_storage_grows(monkeypatch):
    monkeypatch.setattr(beam_mod, "_INITIAL_FRAMES", 2)
    rng = np.random.default_rng(4)
    lp = log_softmax(rng.standard_normal((80, 29)) * 3)
    lm = BigramLM({})
    lm.table = log_softmax(rng.standard_normal((29, 29)))
    small = beam_search(lp, TOK, BEAM, lm=lm, beam=6, nbest=3)
    monkeypatch.setattr(beam_mod, "_INITIAL_FRAMES", 4096)
    big = beam_search(lp, TOK, BEAM, lm=lm, beam=6, nbest=3)
    assert [h.tokens for h in small] == [h.tokens for h in big]
    assert [h.score for h in small] == pytest.approx([h.score for h in big])


def test_batch_helper_matches_single():
    rng = np.random.default_rng(5)
    x = np.stack([log_softmax(rng.standard_normal((30, 29)) * 3) for _ in range(3)])
    lengths = [30, 17, 5]
    out = beam_search_batch(torch.from_numpy(x), TOK, BEAM, lengths=torch.tensor(lengths), beam=4)
    for i, n in enumerate(lengths):
        assert out[i][0].tokens == beam_search(x[i, :n], TOK, BEAM, beam=4)[0].tokens


def test_lm_with_other_token_set_is_refused():
    from asr.errors import ASRError

    lm = BigramLM({}, V=12)
    with pytest.raises(ASRError, match="token set"):
        beam_search(spell(text_frames("a b")), TOK, BEAM, lm=lm)


def test_batch_with_lm_shares_lm_calls_and_matches_single():
    rng = np.random.default_rng(6)
    lps = [log_softmax(rng.standard_normal((n, 29)) * 3) for n in (40, 25, 60, 1)]
    table = log_softmax(rng.standard_normal((29, 29)))
    singles, calls = [], []
    for x in lps:
        lm = BigramLM({})
        lm.table = table
        singles.append(beam_search(x, TOK, BEAM, lm=lm, beam=5, alpha=0.6, beta=0.3, nbest=3))
        calls.append(lm.calls)
    lm = BigramLM({})
    lm.table = table
    batch = beam_search_batch(lps, TOK, BEAM, lm=lm, beam=5, alpha=0.6, beta=0.3, nbest=3)
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
    h = beam_search(lp, bpe, BEAM, lm=lm, beam=4, alpha=0.1, beta=0.7)[0]
    assert h.text == "the cat sat"
    assert h.bonus == pytest.approx(0.7 * 3)


# --------------------------------------------------------------------------------------------------
# options: one DecodeConfig, overrides checked like the config
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field,value", [
    ("beam", 0), ("beam", -2), ("beam", 2.5), ("beam", True), ("nbest", 0), ("batch_frames", 0),
    ("token_prune_topk", 0), ("alpha", -0.1), ("alpha", math.nan), ("beta", math.nan), ("hotword_weight", -1.0),
    ("prune_threshold", 0.5), ("beam_threshold", -1.0), ("blank_skip_threshold", 0.0), ("method", "viterbi")])
def test_decode_config_refuses_bad_values(field, value):
    from asr.errors import ConfigError

    with pytest.raises(ConfigError, match=f"decode option {field}="):
        DecodeConfig(**{field: value})


def test_decode_yaml_with_a_bad_value_names_the_file(tmp_path):
    from asr import config as config_mod
    from asr.errors import ConfigError

    (tmp_path / "decode.yaml").write_text("method: beam\nbeam: 0\n")
    with pytest.raises(ConfigError, match=r"decode\.yaml.*beam=0"):
        config_mod.load(DecodeConfig, tmp_path / "decode.yaml")
    (tmp_path / "decode.yaml").write_text("method: beam\ntoken_prune_topk: null\nprune_threshold: -8\n")
    cfg = config_mod.load(DecodeConfig, tmp_path / "decode.yaml")
    assert cfg.token_prune_topk is None and cfg.prune_threshold == -8.0


def test_overrides_replace_fields_and_are_checked():
    from asr.errors import ConfigError

    lp = ambiguous("the c", "o", "a", 0.6, "t")
    assert beam_search(lp, TOK, BEAM, beam=3, nbest=2) == beam_search(lp, TOK, replace(BEAM, beam=3, nbest=2))
    with pytest.raises(ConfigError, match="beam=0"):
        beam_search(lp, TOK, BEAM, beam=0)
    with pytest.raises(ConfigError, match="nbest=0"):
        beam_search_batch([lp], TOK, BEAM, nbest=0)
    with pytest.raises(TypeError):  # not a DecodeConfig field
        beam_search(lp, TOK, BEAM, beem=3)


def test_use_lm_off_leaves_the_lm_out():
    lp = ambiguous("the c", "o", "a", 0.6, "t")
    lm = BigramLM({("c", "a"): math.log(0.5), ("c", "o"): math.log(0.01)})
    off = beam_search(lp, TOK, replace(BEAM, use_lm=False), lm=lm, beam=8, alpha=1.0)
    assert off == beam_search(lp, TOK, BEAM, beam=8) and off[0].text == "the cot"
    assert lm.calls == 0


# --------------------------------------------------------------------------------------------------
# the lexicon and hotword rules, alone (tokens: 0 blank, 1 separator, 2 a, 3 b, 4 c, 5 d)
# --------------------------------------------------------------------------------------------------
def _roles(V: int = 6) -> tuple[np.ndarray, np.ndarray]:
    is_sep = np.zeros(V, bool)
    is_sep[1] = True
    return is_sep, np.zeros(V, bool)


def test_lexicon_rule():
    lex = beam_mod._build_trie([[2, 3], [2, 3, 4]], 6)  # the words "ab" and "abc"
    is_sep, word_start = _roles()

    def step(state, c):
        return int(beam_mod._lexicon_step(lex, is_sep, word_start, state, c))

    a = step(0, 2)
    ab = step(a, 3)
    abc = step(ab, 4)
    assert min(a, ab, abc) > 0 and len({a, ab, abc}) == 3
    assert step(0, 3) == -1 and step(0, 5) == -1  # no lexicon word starts with b or d
    assert step(a, 1) == -1  # "a" is no word: it may not end at a separator
    assert step(ab, 1) == 0 and step(abc, 1) == 0 and step(0, 1) == 0  # whole words end; separators repeat
    assert step(ab, 5) == -1 and step(abc, 4) == -1  # "abd", "abcc" spell no word
    assert [bool(beam_mod._word_complete(lex, s)) for s in (0, a, ab, abc)] == [True, False, True, True]
    word_start[2] = True  # BPE: a word-start piece closes the word like a separator and opens the next
    assert step(ab, 2) == a and step(a, 2) == -1


def test_hotword_rule():
    w = 1.5
    hot = beam_mod._build_trie([[2, 3], [4, 1, 5]], 6, [w, w])  # the hotword "ab" and the phrase "c d"
    is_sep, word_start = _roles()

    def spell(tokens, state=0, bonus=0.0):
        for c in tokens:
            state, bonus = beam_mod._hotword_step(hot, is_sep, word_start, state, c, bonus)
        return int(state), float(bonus)

    ab, bonus = spell([2, 3])
    assert bonus == 2 * w and hot.is_word[ab]
    assert spell([2, 3, 1]) == (0, 2 * w)  # a whole hotword ends at the separator: it keeps its bonus
    assert spell([2, 1]) == (0, 0.0)  # "a" only begins "ab": taken back at the word's end
    assert spell([2, 3, 4]) == (-1, 0.0)  # "abc" is another word: "ab"'s bonus is taken back
    assert spell([3, 2, 3]) == (-1, 0.0)  # "ab" inside the word "bab" earns nothing
    assert spell([3, 2, 1, 2, 3]) == (ab, 2 * w)  # ... until the next word begins
    cd, bonus = spell([4, 1, 5])  # a phrase continues over the separator
    assert bonus == 3 * w and hot.is_word[cd] and spell([4, 1, 5, 1]) == (0, 3 * w)
    # the end of the utterance is a word boundary: only whole hotwords keep their bonus
    a, bonus = spell([2])
    assert beam_mod._hotword_leave(hot, a, bonus, True) == 0.0
    assert beam_mod._hotword_leave(hot, ab, 2 * w, True) == 2 * w
    word_start[2] = True  # BPE: a word-start piece ends the hotword before it and may begin the next
    assert spell([2, 3, 2]) == (spell([2])[0], 3 * w)


def test_hotword_rule_with_a_boost_per_hotword():
    """Each hotword earns its own boost per token; where hotwords share a prefix the prefix earns
    the larger boost (an upper bound, so pruning stays exact) and a shorter hotword that ends there
    keeps only its own boost x its length."""
    hot = beam_mod._build_trie([[2, 3], [2, 3, 4, 5], [5]], 6, [1.0, 3.0, 0.5])  # "ab" 1, "abcd" 3, "d" 0.5
    is_sep, word_start = _roles()

    def spell(tokens, state=0, bonus=0.0):
        for c in tokens:
            state, bonus = beam_mod._hotword_step(hot, is_sep, word_start, state, c, bonus)
        return int(state), float(bonus)

    assert spell([2, 3])[1] == 6.0  # on the way to "abcd": 3 per token
    assert spell([2, 3, 1]) == (0, 2.0)  # "ab" ends here: it keeps 1 x 2 tokens
    assert spell([2, 3, 4, 5, 1]) == (0, 12.0)  # "abcd": 3 x 4
    assert spell([2, 3, 4, 1]) == (0, 0.0)  # "abc" is no hotword
    assert spell([5, 1]) == (0, 0.5)
    # through the search: each phrase's own boost decides, a boost of None is hotword_weight
    lp = ambiguous("a c", "o", "a", 0.7, "t")
    assert beam_search(lp, TOK, BEAM, hotwords={"cat": 0.0}, beam=8)[0].text == "a cot"
    h = beam_search(lp, TOK, BEAM, hotwords={"cat": 1.5, "cot": 0.1}, beam=8)[0]
    assert (h.text, h.bonus) == ("a cat", pytest.approx(4.5))
    h = beam_search(lp, TOK, BEAM, hotwords=[("cot", 0.0), ("cat", None)], beam=8, hotword_weight=1.5)[0]
    assert (h.text, h.bonus) == ("a cat", pytest.approx(4.5))
    with pytest.raises(ConfigError, match="'cat'.*boost"):
        beam_search(lp, TOK, BEAM, hotwords={"cat": -1.0})


# --------------------------------------------------------------------------------------------------
# results pinned: texts and scores of the search before its kernel became named steps
# --------------------------------------------------------------------------------------------------
WORDS = ("the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "hat")


def speechlike(seed: int, n_words: int = 12) -> np.ndarray:
    """Words of WORDS spelled with 1-2 frames per character (peak 0.4-0.95, the rest on blank and
    3 random tokens), 0-2 blank frames between characters."""
    rng = np.random.default_rng(seed)
    V = TOK.vocab_size
    rows = []
    for ch in " ".join(rng.choice(WORDS, n_words)):
        tok = TOK.space_id if ch == " " else TOK.encode(ch)[0]
        for _ in range(int(rng.integers(1, 3))):
            p = np.full(V, 1e-5)
            top = rng.uniform(0.4, 0.95)
            rest = (1 - top) * rng.dirichlet(np.ones(4))
            p[tok] += top
            p[0] += rest[0]
            p[rng.integers(1, V, 3)] += rest[1:]
            rows.append(p / p.sum())
        for _ in range(int(rng.integers(0, 3))):
            p = np.full(V, 1e-4)
            p[0] = 0.9
            rows.append(p / p.sum())
    return np.log(np.asarray(rows)).astype(np.float32)


PINNED_CASES = {
    "default": dict(beam=8),
    "exact": dict(beam=8, token_prune_topk=None, prune_threshold=None, beam_threshold=None, blank_skip_threshold=1.0),
    "lm": dict(beam=8, lm=True, alpha=0.6, beta=0.4),
    "lm_hotwords": dict(beam=8, lm=True, alpha=0.6, beta=0.4, hotwords=("cat", "the mat"), hotword_weight=1.0),
    "lexicon_hotwords": dict(beam=8, lexicon=WORDS[:6], hotwords=("dog",), hotword_weight=1.5),
}
PINNED = {  # (text, score) of the 3-best, from the search as it was on main before the rewrite
    "default": [("cat cat ran mat a dog ran the mat cat mag hat", -27.640897),
                ("cat cat ran mat a dog ran the mat cat mat hat", -27.642835),
                ("cat cat ran mat a tog ran the mat cat mag hat", -27.917434)],
    "lm": [("cat cbt ri at o ra te mat at mat h", -109.787655), ("cat cbt ri at o ra te mat at ma h", -110.389031),
           ("cat cbt ri at o ra te mat at mat ha", -110.45151)],
    "lm_hotwords": [("cat cat ri at o ra the mat cat mat h", -96.992401),
                    ("cat cat ri at o ra the mat cat ma h", -97.593777),
                    ("cat cat ri at o ra the mat cat mat ha", -97.656257)],
    "lexicon_hotwords": [("cat cat a mat a on the mat cat mat a", -57.397296),
                         ("cat cat a mat on the mat cat mat a", -58.369446),
                         ("cat cat a mat a cat the mat cat mat a", -58.731278)],
}
PINNED["exact"] = PINNED["default"]  # the default pruning loses nothing on this input


@pytest.mark.parametrize("case", sorted(PINNED_CASES))
def test_results_are_pinned(case):
    kw = dict(PINNED_CASES[case])
    lm = None
    if kw.pop("lm", False):
        lm = BigramLM({})
        lm.table = log_softmax(np.random.default_rng(5).standard_normal((29, 29)))
    hyps = beam_search(speechlike(11), TOK, BEAM, lm=lm, nbest=3, **kw)
    assert [h.text for h in hyps] == [t for t, _ in PINNED[case]]
    assert [h.score for h in hyps] == pytest.approx([s for _, s in PINNED[case]], abs=2e-6)


# --------------------------------------------------------------------------------------------------
# greedy: the one best-path decoder, numpy only; what the runtime uses imports no torch
# --------------------------------------------------------------------------------------------------
def test_greedy_decode_collapses_per_utterance():
    frames = [1, 1, 0, 1, 2, 2, 0, 3]
    lp = np.full((len(frames), 4), -5.0, np.float32)
    lp[np.arange(len(frames)), frames] = -0.1
    assert greedy_decode(lp) == [[1, 1, 2, 3]]
    assert greedy_decode(lp, blank_id=2) == [[1, 0, 1, 0, 3]]
    batch = np.stack([lp, lp[::-1]])
    assert greedy_decode(batch, [8, 3]) == [[1, 1, 2, 3], [3, 2]]
    assert greedy_decode(batch) == [[1, 1, 2, 3], [3, 2, 1, 1]]
    assert greedy_decode(np.zeros((0, 4), np.float32)) == [[]]
    assert collapse([]) == [] and collapse(np.array([0, 0])) == []


def test_decode_modules_do_not_import_torch():
    code = ("import sys, numpy as np\n"
            "from asr.decode import beam, config, greedy\n"
            "beam.warmup()\n"
            "greedy.greedy_decode(np.zeros((3, 4), np.float32))\n"
            "assert 'torch' not in sys.modules, [m for m in sys.modules if m.startswith('torch')]\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
