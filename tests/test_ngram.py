"""Word n-gram LMs: the modified Kneser-Ney builder (hand-computed values, kenlm's scores of our
ARPA files), the ARPA reader, and n-gram fusion in the CTC prefix beam search."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr.decode.beam import beam_search, beam_search_batch
from asr.decode.config import DecodeConfig
from asr.decode.rescore import rescore, sequence_log_probs
from asr.errors import ASRError, ConfigError
from asr.ngram.arpa import read_arpa
from asr.ngram.build import build_arpa, build_kn, count_ngrams, discounts
from asr.ngram.model import LN10, NgramLM, load_ngram, ngram_score
from asr.text import CharTokenizer

TOK = CharTokenizer()
EXACT = DecodeConfig(method="beam", token_prune_topk=None, prune_threshold=None, beam_threshold=None,
                     blank_skip_threshold=1.0)
CORPUS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the cat ran",
          "the dog ran on the mat", "a cat sat", "on the mat sat the cat", "a dog sat on a log"]


def _write(tmp_path: Path, lines, name="c.txt") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def _probs(orders) -> dict:
    return {g: 10 ** lp for o in orders for g, lp in zip(o.grams, o.logp)}


def _backoffs(orders) -> dict:
    return {g: 10 ** bo for o in orders for g, bo in zip(o.grams, o.backoff)}


# ---------------------------------------------------------------------------------------------- builder
def test_discounts_formula_and_fallback():
    # t = (10, 5, 3, 2): Y = 10/20; D1 = 1 - 2Y*5/10, D2 = 2 - 3Y*3/5, D3+ = 3 - 4Y*2/3
    assert discounts([10, 5, 3, 2]) == pytest.approx((0.5, 1.1, 3 - 4 / 3))
    assert discounts([4, 2, 0, 0]) == (0.5, 1.0, 1.5)  # t3 = 0: lmplz's fallback


def test_modified_kneser_ney_matches_hand_computed_bigram_values():
    # <s> a b </s> / <s> a c </s> / <s> b </s>; the count-of-counts lack t3, so D = (0.5, 1, 1.5)
    orders = build_kn(count_ngrams([["a", "b"], ["a", "c"], ["b"]], 2))
    p, bo = _probs(orders), _backoffs(orders)
    # unigrams: continuation counts a 1 (<s>), b 2 (a, <s>), c 1 (a), </s> 2 (b, c): total 6;
    # gamma = (0.5*2 + 1*2)/6 = 0.5, uniform over {a, b, c, </s>, <unk>} = 1/5
    assert p[("a",)] == pytest.approx(0.5 / 6 + 0.5 / 5)
    assert p[("b",)] == pytest.approx(1 / 6 + 0.1)
    assert p[("</s>",)] == pytest.approx(1 / 6 + 0.1)
    assert p[("<unk>",)] == pytest.approx(0.1)
    assert orders[0].logp[orders[0].grams.index(("<s>",))] == -99.0
    # <s>: a 2, b 1 -> gamma = (0.5 + 1)/3
    assert p[("<s>", "a")] == pytest.approx(1 / 3 + 0.5 * (0.5 / 6 + 0.1))
    assert p[("<s>", "b")] == pytest.approx(0.5 / 3 + 0.5 * (1 / 6 + 0.1))
    assert bo[("<s>",)] == pytest.approx(0.5)
    # a: b 1, c 1 -> gamma = 2*0.5/2
    assert p[("a", "b")] == pytest.approx(0.5 / 2 + 0.5 * (1 / 6 + 0.1))
    assert p[("a", "c")] == pytest.approx(0.5 / 2 + 0.5 * (0.5 / 6 + 0.1))
    assert bo[("a",)] == pytest.approx(0.5)
    # b: </s> 2 -> (2 - 1)/2 + (1/2) p(</s>)
    assert p[("b", "</s>")] == pytest.approx(0.5 + 0.5 * (1 / 6 + 0.1))


def test_middle_order_uses_continuation_counts():
    # "x y" follows both "a" and "b" (continuation count 2) but occurs 3 times
    orders = build_kn(count_ngrams([["a", "x", "y"], ["b", "x", "y"], ["a", "x", "y"]], 3))
    p3 = {g: 10 ** lp for g, lp in zip(orders[2].grams, orders[2].logp)}
    p2 = {g: 10 ** lp for g, lp in zip(orders[1].grams, orders[1].logp)}
    p1 = {g: 10 ** lp for g, lp in zip(orders[0].grams, orders[0].logp)}
    # order 2, history x: the only bigram x y has continuation count 2 (a x y, b x y) -> D2 = 1
    assert p2[("x", "y")] == pytest.approx((2 - 1.0) / 2 + (1.0 / 2) * p1[("y",)])
    # order 3 (raw counts), history a x: a x y 2 times -> (2 - 1)/2 + gamma(a x) p(y | x)
    assert p3[("a", "x", "y")] == pytest.approx(0.5 + 0.5 * p2[("x", "y")])


@pytest.mark.parametrize("order,prune", [(3, ()), (4, ()), (4, (0, 1, 1))])
def test_arpa_is_well_formed_and_normalised(tmp_path, order, prune):
    arpa = tmp_path / "lm.arpa"
    build_arpa([_write(tmp_path, CORPUS)], arpa, order=order, prune=prune, progress=False)
    text = arpa.read_text()
    assert text.startswith("\\data\\\n") and text.rstrip().endswith("\\end\\")
    orders = read_arpa(arpa)  # checks the header counts against the sections
    assert len(orders) == order
    header = [line for line in text.splitlines() if line.startswith("ngram ")]
    assert header == [f"ngram {o.order}={len(o.grams)}" for o in orders]
    # lower orders carry a backoff column, the highest none
    lines2 = text.split("\\2-grams:\n")[1].split("\n\n")[0].splitlines()
    assert all(len(line.split("\t")) == 3 for line in lines2)
    last = text.split(f"\\{order}-grams:\n")[1].split("\n\n")[0].splitlines()
    assert all(len(line.split("\t")) == 2 for line in last)
    if prune:
        full = build_kn(count_ngrams([s.split() for s in CORPUS], order))
        assert len(orders[3].grams) < len(full[3].grams) and len(orders[1].grams) == len(full[1].grams)
    lm = NgramLM(orders)
    vocab = [i for i, w in enumerate(lm.words) if w != "<s>"]
    for hist in ([], ["<s>"], ["the"], ["<s>", "the"], ["the", "cat"], ["on", "the"], ["sat", "on", "the"],
                 ["zebra", "the"]):
        state = 0
        for w in hist:
            state = lm.bos_state if w == "<s>" else ngram_score(lm.tables, state, lm.word_id(w))[1]
        total = sum(math.exp(ngram_score(lm.tables, state, w)[0]) for w in vocab)
        assert total == pytest.approx(1.0, abs=2e-6), hist


@pytest.mark.parametrize("prune", [(), (0, 1)])
def test_kenlm_scores_our_arpa_like_our_reader(tmp_path, prune):
    kenlm = pytest.importorskip("kenlm", reason="the kenlm module is not installed (pip install kenlm)")
    arpa = tmp_path / "lm.arpa"
    build_arpa([_write(tmp_path, CORPUS)], arpa, order=3, prune=prune, progress=False)
    ours, theirs = load_ngram(arpa), kenlm.Model(str(arpa))
    for s in CORPUS + ["the cat sat on the log", "a zebra sat on the mat", "mat the on", "dog dog dog", "unknown"]:
        assert ours.score_words(s.split()) == pytest.approx(theirs.score(s, bos=True, eos=True), abs=1e-4), s
        assert ours.score_words(s.split(), bos=False, eos=False) == pytest.approx(
            theirs.score(s, bos=False, eos=False), abs=1e-4), s


def test_build_ngram_cli(tmp_path):
    out = tmp_path / "sub" / "lm.arpa"
    r = subprocess.run([sys.executable, "-m", "asr.cli", "build-ngram", "--text", str(_write(tmp_path, CORPUS)),
                        "--order", "3", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(read_arpa(out)) == 3 and not list(out.parent.glob("*.tmp*"))
    r = subprocess.run([sys.executable, "-m", "asr.cli", "build-ngram", "--text", str(tmp_path / "none.txt"),
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode != 0 and "none.txt" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------------------------------------- reader
ARPA = """\\data\\
ngram 1=5
ngram 2=4

\\1-grams:
-1.0\t<s>\t-0.3
-0.5\ta\t-0.2
-0.7\tb\t-0.1
-0.9\t</s>
-2.0\t<unk>

\\2-grams:
-0.2\t<s> a
-0.3\ta b
-0.1\tb </s>
-0.4\ta a

\\end\\
"""


def test_reader_backs_off_like_the_arpa_rules(tmp_path):
    p = tmp_path / "t.arpa"
    p.write_text(ARPA)
    lm = load_ngram(p)
    # <s> a b </s>: p(a|<s>) p(b|a) p(</s>|b)
    assert lm.score_words(["a", "b"]) == pytest.approx(-0.2 - 0.3 - 0.1)
    # <s> b a </s>: bo(<s>) + p(b); bo(b) + p(a); bo(a) + p(</s>)
    assert lm.score_words(["b", "a"]) == pytest.approx((-0.3 - 0.7) + (-0.1 - 0.5) + (-0.2 - 0.9))
    # an OOV word is <unk>, and the history after it is empty
    assert lm.score_words(["zz", "a"], eos=False) == pytest.approx(-0.3 - 2.0 - 0.5)
    gz = tmp_path / "t.arpa.gz"
    import gzip

    gz.write_bytes(gzip.compress(ARPA.encode()))
    assert load_ngram(gz).score_words(["b", "a"]) == pytest.approx(lm.score_words(["b", "a"]))


def test_table_cache_gives_identical_scores_and_follows_the_arpa_file(tmp_path, monkeypatch):
    import asr.ngram.model as model_mod

    arpa = tmp_path / "lm.arpa"
    build_arpa([_write(tmp_path, CORPUS)], arpa, order=3, progress=False)
    parsed = NgramLM.load(arpa, cache=False)
    assert not model_mod.cache_path(arpa).exists()
    built = load_ngram(arpa)  # parses, writes .lm.arpa.npz
    assert model_mod.cache_path(arpa).is_file()

    def no_parse(*a, **k):
        raise AssertionError("the ARPA file was parsed although its cache matches")

    monkeypatch.setattr(model_mod, "read_arpa", no_parse)
    cached = load_ngram(arpa)
    for lm in (built, cached):
        assert lm.words == parsed.words and lm.vocab == parsed.vocab
        assert (lm.order, lm.bos_state, lm.eos) == (parsed.order, parsed.bos_state, parsed.eos)
        for f, a in parsed.tables._asdict().items():
            b = getattr(lm.tables, f)
            assert np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype, f
    sents = CORPUS + ["the cat sat on the log", "a zebra sat on the mat", "mat the on", "unknown"]
    for s in sents:
        assert cached.score_words(s.split()) == parsed.score_words(s.split()), s
    lp = _spell("the cat sat on the mat")
    assert beam_search(lp, TOK, EXACT, ngram=cached, beam=8) == beam_search(lp, TOK, EXACT, ngram=parsed, beam=8)

    # another ARPA file at the same path: the stale cache is not used, and is replaced
    monkeypatch.undo()
    build_arpa([_write(tmp_path, CORPUS[:3], name="d.txt")], arpa, order=2, progress=False)
    fresh = NgramLM.load(arpa, cache=False)
    again = load_ngram(arpa)
    assert again.order == 2 and again.words == fresh.words
    assert [again.score_words(s.split()) for s in sents] == [fresh.score_words(s.split()) for s in sents]
    monkeypatch.setattr(model_mod, "read_arpa", no_parse)
    assert load_ngram(arpa).score_words(["a", "cat"]) == fresh.score_words(["a", "cat"])
    # a damaged cache is rebuilt, not trusted
    monkeypatch.undo()
    model_mod.cache_path(arpa).write_bytes(b"not a zip file")
    assert load_ngram(arpa).score_words(["a", "dog"]) == fresh.score_words(["a", "dog"])
    monkeypatch.setattr(model_mod, "read_arpa", no_parse)
    load_ngram(arpa)


@pytest.mark.parametrize("bad,what", [
    (ARPA.replace("ngram 2=4", "ngram 2=5"), "ngram 2=5"),
    (ARPA.replace("-0.3\ta b", "x\ta b"), ":14:"),
    (ARPA.replace("\\end\\\n", ""), "end"),
    (ARPA.replace("-0.3\ta b", "-0.3\ta q"), "'q'"),
    (ARPA.replace("-0.3\ta b", "0.3\ta b"), "<= 0"),
])
def test_reader_refuses_malformed_files_naming_them(tmp_path, bad, what):
    p = tmp_path / "bad.arpa"
    p.write_text(bad)
    with pytest.raises(ASRError, match="bad.arpa") as e:
        load_ngram(p)
    assert what in str(e.value)


# ---------------------------------------------------------------------------------------------- search
def _spell(text: str, confusions: dict[int, tuple[str, float]] = {}) -> np.ndarray:
    """A confident spelling of ``text`` (a blank after each character); at character index i in
    ``confusions`` the frame is split between the true character and another one."""
    V = TOK.vocab_size
    rows = []
    for i, ch in enumerate(text):
        p = np.full(V, 1e-4)
        tid = TOK.space_id if ch == " " else TOK.encode(ch)[0]
        if i in confusions:
            other, q = confusions[i]
            p[tid] = 1 - q
            p[TOK.space_id if other == " " else TOK.encode(other)[0]] = q
        else:
            p[tid] = 0.97
        rows.append(p)
        b = np.full(V, 1e-4)
        b[0] = 0.97
        rows.append(b)
    x = np.asarray(rows)
    return np.log(x / x.sum(1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> NgramLM:
    d = tmp_path_factory.mktemp("ng")
    arpa = d / "lm.arpa"
    build_arpa([_write(d, CORPUS)], arpa, order=3, progress=False)
    return load_ngram(arpa)


def _expected_ngram(lm: NgramLM, text: str, unk_offset: float) -> float:
    """ln score of a whole hypothesis under the search's rules, from score_words (independent of the kernel)."""
    words = text.split()
    off = sum(unk_offset * max(1.0, len(w) / 6) for w in words if w not in lm.vocab)
    return lm.score_words(words) * LN10 + off


def test_ngram_fixes_an_acoustically_ambiguous_word(lm):
    # "the cat sat on the mat" with the m of "mat" nearly lost to an l: "lat" is no word
    lp = _spell("the cat sat on the mat", {19: ("l", 0.6)})
    plain = beam_search(lp, TOK, EXACT, beam=8)[0]
    assert plain.text == "the cat sat on the lat"
    fused = beam_search(lp, TOK, EXACT, beam=8, ngram=lm, ngram_weight=1.0, beta=0.0)[0]
    assert fused.text == "the cat sat on the mat"
    assert fused.ngram_score == pytest.approx(_expected_ngram(lm, fused.text, -10.0), abs=1e-6)
    assert fused.score == pytest.approx(fused.am_score + 1.0 * fused.ngram_score + fused.bonus, abs=1e-6)
    assert fused.lm_score == 0.0
    # the word bonus counts words with the n-gram alone, as with the LSTM LM
    b = beam_search(lp, TOK, EXACT, beam=8, ngram=lm, ngram_weight=1.0, beta=0.5)[0]
    assert b.bonus == pytest.approx(0.5 * 6)
    # use_ngram false or weight 0: the plain search
    assert beam_search(lp, TOK, EXACT, beam=8, ngram=lm, use_ngram=False)[0].tokens == plain.tokens
    w0 = beam_search(lp, TOK, EXACT, beam=8, ngram=lm, ngram_weight=0.0, beta=0.0)[0]
    assert w0.tokens == plain.tokens and w0.score == pytest.approx(plain.score)


def test_oov_offset_and_nbest_scores_are_consistent(lm):
    lp = _spell("the zebra sat", {4: ("c", 0.45)})  # "zebra" is outside the LM's vocabulary
    for off in (-10.0, -2.0):
        hyps = beam_search(lp, TOK, EXACT, beam=16, nbest=6, ngram=lm, ngram_weight=0.7, beta=1.0, unk_offset=off)
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            assert h.ngram_score == pytest.approx(_expected_ngram(lm, h.text, off), abs=1e-6), h.text
            assert h.score == pytest.approx(h.am_score + 0.7 * h.ngram_score + h.bonus, abs=1e-5)
    # a long OOV costs its offset per 6 characters: merging words into one OOV is not cheap
    assert _expected_ngram(lm, "thecatsatonthemat", -10.0) < -10.0 * 2.5


def test_pruned_search_keeps_the_exact_result(lm):
    rng = np.random.default_rng(3)
    lp = _spell("a dog sat on the log", {2: ("b", 0.4), 10: ("i", 0.4), 17: ("f", 0.3)})
    lp = lp + rng.normal(0, 0.3, lp.shape).astype(np.float32)
    lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    kw = dict(ngram=lm, ngram_weight=0.8, beta=0.5)
    exact = beam_search(lp, TOK, EXACT, beam=12, nbest=3, **kw)
    bounded = beam_search(lp, TOK, EXACT, beam=12, nbest=3, beam_threshold=1e9, **kw)
    assert [h.tokens for h in exact] == [h.tokens for h in bounded]
    batch = beam_search_batch([lp, lp[:20]], TOK, EXACT, beam=12, nbest=3, **kw)
    assert [h.tokens for h in batch[0]] == [h.tokens for h in exact]
    assert batch[1][0].tokens == beam_search(lp[:20], TOK, EXACT, beam=12, **kw)[0].tokens


def test_hotword_boosts_and_ngram_keep_the_pruning_bound_exact(lm):
    """Per-hotword boosts with the n-gram LM: the kernel's bound (largest boost per token + the exact
    n-gram gain of each extension) prunes only what a search without the bound drops too."""
    import dataclasses

    from asr.decode import beam as beam_mod

    def noisy(seed: int, sd: float) -> np.ndarray:
        lp = _spell("a dog sat on the log", {2: ("b", 0.45), 6: ("r", 0.4), 17: ("f", 0.45)})
        lp = lp + np.random.default_rng(seed).normal(0, sd, lp.shape).astype(np.float32)
        return lp - np.log(np.exp(lp).sum(1, keepdims=True))

    lp = noisy(0, 0.8)
    opts = dataclasses.replace(EXACT, beam=4, nbest=4, ngram_weight=0.8, beta=0.5)
    hot = [("bog", 3.0), ("dot", 0.5), ("fog", 1.5), ("sat on", 0.2)]
    setup = beam_mod._rules(lp.shape[1], TOK, opts, None, hot, None, lm)
    assert setup.rules.use_ng and setup.rules.use_hw and setup.rules.hw_weight == 3.0

    def search(hw_bound: float) -> list:
        s = dataclasses.replace(setup, rules=setup.rules._replace(hw_weight=hw_bound))
        return [(h.tokens, h.score, h.bonus, h.ngram_score) for h in beam_mod._decode([lp], s)[0]]

    assert search(3.0) == search(1e6)  # 1e6: the bound prunes nothing
    assert search(0.0) != search(1e6)  # a bound without the boosts prunes survivors: this case tests it
    # the boosts act: a strongly boosted hotword wins where the plain search spells the truth
    lp = noisy(5, 0.4)
    plain = beam_search(lp, TOK, opts, ngram=lm)[0].text
    boosted = beam_search(lp, TOK, opts, ngram=lm, hotwords=[("bog", 30.0)])[0].text
    assert "bog" not in plain.split() and "bog" in boosted.split()


class _CharBigram:
    """A token LM (LSTM interface) that prefers one character after another."""

    def __init__(self, likes: dict[str, str]):
        V = TOK.vocab_size
        self.table = np.full((V, V), math.log(1.0 / V), np.float32)
        for a, b in likes.items():
            self.table[TOK.encode(a)[0], TOK.encode(b)[0]] = math.log(0.5)
        self.calls = 0

    def initial_state(self):
        return None

    def score_batch(self, states, tokens):
        self.calls += 1
        return self.table[np.asarray(tokens)], list(tokens)


def test_lstm_rescoring_and_fusion_with_the_ngram(lm):
    tok_lm = _CharBigram({"l": "o"})
    seqs = [TOK.encode("log"), TOK.encode("a")]
    want = [sum(float(tok_lm.table[a, b]) for a, b in zip([0] + s, s + [0])) for s in seqs]
    assert sequence_log_probs(tok_lm, seqs) == pytest.approx(want)
    lp = _spell("on the log", {8: ("a", 0.55)})  # log / lag: "lag" is no LM word
    rs = beam_search(lp, TOK, EXACT, beam=8, nbest=2, ngram=lm, lm=tok_lm, lstm_mode="rescore", alpha=0.5,
                     ngram_weight=0.0, beta=0.0, rescore_nbest=8)
    assert len(rs) == 2
    for h in rs:
        assert h.lm_score == pytest.approx(sequence_log_probs(tok_lm, [h.tokens])[0])
        assert h.score == pytest.approx(h.am_score + 0.5 * h.lm_score + h.bonus, abs=1e-5)
    assert rs[0].text == "on the log"
    fused = beam_search(lp, TOK, EXACT, beam=8, ngram=lm, lm=tok_lm, alpha=0.5, ngram_weight=0.5, beta=0.0)[0]
    assert fused.text == "on the log" and fused.lm_score != 0.0 and fused.ngram_score != 0.0
    assert fused.score == pytest.approx(fused.am_score + 0.5 * fused.lm_score + 0.5 * fused.ngram_score, abs=1e-5)
    # rescore of an N-best list by hand
    base = beam_search(lp, TOK, EXACT, beam=8, nbest=4, ngram=lm, ngram_weight=0.0, beta=0.0)
    again = rescore([base], tok_lm, 0.5, 4)[0]
    assert sorted(h.text for h in again) == sorted(h.text for h in base)


def test_decode_config_checks_the_ngram_fields():
    for bad in (dict(ngram_weight=-1.0), dict(unk_offset=1.0), dict(lstm_mode="both"), dict(rescore_nbest=0)):
        with pytest.raises(ConfigError):
            DecodeConfig(**bad)


# ---------------------------------------------------------------------------------------------- packages
def test_package_and_onnx_export_carry_the_ngram(tmp_path):
    pytest.importorskip("onnxruntime")
    from _runtime_helpers import make_package

    from asr.export import export_package
    from asr.package import check_package, write_manifest
    from asr.recognizer import Recognizer
    from asr.recognizer.spec import read_runtime_spec

    make_package(tmp_path / "pkg", bidirectional=True, hidden=16, layers=1)
    build_arpa([_write(tmp_path, CORPUS)], tmp_path / "pkg" / "lm.arpa", order=3, progress=False)
    (tmp_path / "pkg" / "decode.yaml").write_text("method: beam\nbeam: 4\nngram_weight: 0.5\nbeta: 1.0\n")
    write_manifest(tmp_path / "pkg")
    export_package(tmp_path / "pkg", tmp_path / "onnx", log=lambda *a: None, check_lengths=(7,))
    assert (tmp_path / "onnx" / "lm.arpa").read_bytes() == (tmp_path / "pkg" / "lm.arpa").read_bytes()
    assert "lm.arpa" in check_package(tmp_path / "onnx").meta["files"]  # hashed like every file
    spec = read_runtime_spec(tmp_path / "onnx")
    assert spec.ngram is not None and spec.ngram.order == 3 and spec.ngram.file == "lm.arpa"
    assert spec.decode.ngram_weight == 0.5
    x = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    texts = []
    for pkg, backend in ((tmp_path / "pkg", "torch"), (tmp_path / "onnx", "onnx")):
        rec = Recognizer(pkg, backend=backend)
        assert rec.ngram is not None and rec.ngram.order == 3
        lp = rec.log_probs(x)
        h = beam_search(lp, rec.tokenizer, rec.decode_config, ngram=rec.ngram)[0]
        assert rec.decode(lp) == h.text
        texts.append(rec.transcribe(x, 16000))
        assert Recognizer(pkg, backend=backend, use_ngram=False).ngram is None
    assert texts[0] == texts[1]


def test_tune_picks_the_ngram_weight_on_dev(tmp_path, lm, monkeypatch):
    from asr.decode import cli as decode_cli
    from asr.decode.tune import tune

    lps = {"u1": _spell("the cat sat on the mat", {19: ("l", 0.6)}), "u2": _spell("a dog sat on a log", {13: ("b", 0.6)})}
    (tmp_path / "text").write_text("u1 the cat sat on the mat\nu2 a dog sat on a log\n")
    monkeypatch.setattr(decode_cli, "load_features", lambda model, d, utts: [lps[u] for u in utts])

    class Model:  # what tune() uses of a Recognizer
        tokenizer, lm = TOK, None
        hotwords, lexicon = [], None  # a package without hotwords or a lexicon (search_lists of nothing)
        decode_config = DecodeConfig(method="beam", beam=8)

        def emissions(self, feats):
            return feats

    model = Model()
    model.ngram = lm
    res = tune(model, tmp_path, alphas=(0.0, 1.0), betas=(0.0,), max_extend=0, progress=False, weight="ngram_weight")
    assert res["alpha"] == 1.0 and res["dev_wer"] == 0.0
    assert {(t["alpha"], t["wer"] > 0) for t in res["tried"]} == {(0.0, True), (1.0, False)}
