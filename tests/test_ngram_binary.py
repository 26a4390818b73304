"""KenLM binary n-gram LMs (asr.ngram.binary): build_binary output of an ARPA file the test writes,
kenlm's scores of it against our ARPA reader's (golden), the beam search with the binary against
the same search with the ARPA file, packages carrying lm.binary through both backends and the CLI,
and the errors. Needs the kenlm module and KenLM's build_binary (`asr build-kenlm`, which `make
test` runs first); skipped with the reason when either is missing."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from asr.decode.beam import beam_search, beam_search_batch
from asr.errors import ASRError
from asr.ngram.build import build_arpa
from asr.decode.config import DecodeConfig
from asr.ngram.arpa import read_arpa
from asr.ngram.model import load_ngram

from test_ngram import CORPUS, EXACT, TOK, _CharBigram, _expected_ngram, _spell, _write

kenlm = pytest.importorskip("kenlm", reason="the kenlm module is not installed (pip install kenlm)")


def _build_binary() -> Path:
    from asr.ngram.kenlm_build import find_build_binary

    try:
        return find_build_binary()
    except ASRError as e:
        pytest.skip(f"no KenLM build_binary ({e})")


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    """(dir, ARPA NgramLM, {type: binary path}): a 3-gram of CORPUS and its probing and trie binaries."""
    from asr.ngram.binary import write_binary

    exe = _build_binary()
    d = tmp_path_factory.mktemp("kenlm")
    build_arpa([_write(d, CORPUS)], d / "lm.arpa", order=3, progress=False)
    bins = {t: write_binary(d / "lm.arpa", d / f"lm.{t}", t, exe) for t in ("probing", "trie")}
    return d, load_ngram(d / "lm.arpa"), bins


SENTENCES = CORPUS + ["the zebra sat on a cat", "mat the on dog a", "a", "cat cat cat the the"]


@pytest.mark.parametrize("kind", ["probing", "trie"])
def test_kenlm_scores_of_the_binary_are_our_arpa_scores(lms, kind):
    from asr.ngram.binary import KenlmLM, binary_info, read_binary_vocab

    _, arpa_lm, bins = lms
    words = read_binary_vocab(bins[kind])
    assert words[0] == "<unk>" and sorted(words) == sorted(arpa_lm.words)
    counts, has_vocab = binary_info(bins[kind])
    assert has_vocab and len(counts) == 3
    theirs = kenlm.Model(str(bins[kind]))
    assert all(w in theirs for w in words[1:])  # (kenlm says no for <unk>, its word 0)
    ours = load_ngram(bins[kind])
    assert isinstance(ours, KenlmLM) and ours.order == 3 and ours.filled
    for s in SENTENCES:
        golden = sum(p for p, _, _ in theirs.full_scores(s, bos=True, eos=True))  # kenlm's own, per word
        assert theirs.score(s) == pytest.approx(golden, abs=1e-5)
        assert arpa_lm.score_words(s.split()) == pytest.approx(golden, abs=2e-5), s  # float32 in the binary
        assert ours.score_words(s.split()) == pytest.approx(golden, abs=1e-9), s  # the cache gives kenlm's value
    # every unigram after the null context: the partial-word scores of the vocabulary trie
    uni_arpa = arpa_lm.unigram_logp()
    uni = ours.unigram_logp()
    for w, i in ours.vocab.items():
        if w != "<s>":  # (<s> has no probability of its own: -99 in the ARPA file)
            assert uni[i] == pytest.approx(uni_arpa[arpa_lm.vocab[w]], abs=5e-5), w


def _noisy(text, confusions, seed):
    rng = np.random.default_rng(seed)
    lp = _spell(text, confusions)
    lp = lp + rng.normal(0, 0.4, lp.shape).astype(np.float32)
    return lp - np.log(np.exp(lp).sum(1, keepdims=True))


def _same_hyps(a, b):
    assert [h.tokens for h in a] == [h.tokens for h in b]
    for x, y in zip(a, b):
        assert y.ngram_score == pytest.approx(x.ngram_score, abs=2e-4)
        assert y.score == pytest.approx(x.score, abs=2e-4)
        assert y.am_score == x.am_score and y.bonus == x.bonus


@pytest.mark.parametrize("kind", ["probing", "trie"])
def test_beam_search_with_the_binary_is_the_arpa_search(lms, kind):
    _, arpa_lm, bins = lms
    bin_lm = load_ngram(bins[kind])
    utts = [_noisy("the cat sat on the mat", {19: ("l", 0.6)}, 0),
            _noisy("a dog sat on the log", {2: ("b", 0.4), 10: ("i", 0.4), 17: ("f", 0.3)}, 1),
            _noisy("the zebra ran on a mat", {4: ("c", 0.45)}, 2)]  # zebra: outside the vocabulary
    kw = dict(beam=12, nbest=5, ngram_weight=0.8, beta=0.5, unk_offset=-4.0)
    for lp in utts:
        a = beam_search(lp, TOK, EXACT, ngram=arpa_lm, **kw)
        b = beam_search(lp, TOK, EXACT, ngram=bin_lm, **kw)
        _same_hyps(a, b)
        for h in b:  # the score of every hypothesis is the whole-sentence score (no cache miss scored)
            assert h.ngram_score == pytest.approx(_expected_ngram(bin_lm, h.text, -4.0), abs=1e-6), h.text
        # the default pruning, too
        _same_hyps(beam_search(lp, TOK, DecodeConfig(method="beam"), ngram=arpa_lm, **kw),
                   beam_search(lp, TOK, DecodeConfig(method="beam"), ngram=bin_lm, **kw))
    # a batch shares the cache; and with the token LM fused too (its scores are asked after the n-gram's)
    for x, y in zip(beam_search_batch(utts, TOK, EXACT, ngram=arpa_lm, **kw),
                    beam_search_batch(utts, TOK, EXACT, ngram=bin_lm, **kw)):
        _same_hyps(x, y)
    tok_lm = _CharBigram({"l": "o"})
    for lp in utts[:2]:
        _same_hyps(beam_search(lp, TOK, EXACT, ngram=arpa_lm, lm=tok_lm, alpha=0.5, **kw),
                   beam_search(lp, TOK, EXACT, ngram=bin_lm, lm=tok_lm, alpha=0.5, **kw))


def test_bpe_word_starts_end_words_like_the_arpa_search(lms):
    """With BPE pieces a word ends at the next word-start piece: the cache is filled for those too."""
    from asr.text import BPETokenizer

    _, arpa_lm, bins = lms
    bpe = BPETokenizer.train(CORPUS * 10, vocab_size=40)
    V = bpe.vocab_size
    rng = np.random.default_rng(5)
    bin_lm = load_ngram(bins["trie"])
    for text in ("the cat sat on the mat", "a dog ran on the log"):
        rows = []
        for i in bpe.encode(text):
            p = rng.dirichlet(np.full(V, 0.3)) * 0.6
            p[i] += 0.7
            rows += [p, np.eye(V)[0] + 0.05]
        x = np.asarray(rows)
        lp = np.log(x / x.sum(1, keepdims=True)).astype(np.float32)
        kw = dict(beam=10, nbest=4, ngram_weight=1.0, beta=0.5)
        a = beam_search(lp, bpe, EXACT, ngram=arpa_lm, **kw)
        _same_hyps(a, beam_search(lp, bpe, EXACT, ngram=bin_lm, **kw))
        assert a[0].ngram_score < 0


def test_the_cache_is_filled_once_per_pair(lms):
    from asr.ngram.binary import KenlmLM

    _, _, bins = lms
    lm = KenlmLM(bins["probing"])
    lp = _noisy("a cat and a dog", {}, 3)
    first = beam_search(lp, TOK, EXACT, beam=8, ngram=lm, ngram_weight=0.8)
    n_pairs = int(lm.tables.has_p.sum())
    assert n_pairs > 0
    t = lm.tables
    assert int((t.h_keys >= 0).sum()) == n_pairs  # one entry per distinct (state, word) pair
    again = beam_search(lp, TOK, EXACT, beam=8, ngram=lm, ngram_weight=0.8)
    assert [h.tokens for h in again] == [h.tokens for h in first]
    assert int(lm.tables.has_p.sum()) == n_pairs  # the second search found every pair in the cache


def test_build_ngram_cli_writes_and_converts_binaries(tmp_path, lms):
    from asr.cli import main
    from asr.ngram.binary import is_kenlm_binary

    exe = str(_build_binary())
    text = _write(tmp_path, CORPUS)
    assert main(["build-ngram", "--text", str(text), "--order", "3", "--out", str(tmp_path / "a.arpa"),
                 "--binary", str(tmp_path / "a.bin"), "--build-binary", exe]) == 0
    assert is_kenlm_binary(tmp_path / "a.bin") and not is_kenlm_binary(tmp_path / "a.arpa")
    assert main(["build-ngram", "--arpa", str(tmp_path / "a.arpa"), "--binary", str(tmp_path / "b.bin"),
                 "--binary-type", "trie", "--build-binary", exe]) == 0
    a, b = load_ngram(tmp_path / "a.bin"), load_ngram(tmp_path / "b.bin")
    assert a.score_words("the cat sat".split()) == pytest.approx(b.score_words("the cat sat".split()), abs=1e-6)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # atomic: no temporary left


def test_binary_errors_name_the_file(tmp_path, lms, monkeypatch, capsys):
    from asr.cli import main
    from asr.ngram.binary import KenlmLM, read_binary_vocab, write_binary
    from asr.ngram.kenlm_build import find_build_binary

    _, _, bins = lms
    data = bins["probing"].read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[: len(data) - 12])  # the vocabulary strings cut short
    with pytest.raises(ASRError, match="cut.bin.*vocabulary strings"):
        read_binary_vocab(tmp_path / "cut.bin")
    (tmp_path / "v4.bin").write_bytes(data.replace(b"format version 5", b"format version 4", 1))
    with pytest.raises(ASRError, match="v4.bin.*format version"):
        read_binary_vocab(tmp_path / "v4.bin")
    (tmp_path / "bad.arpa").write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1 a\n\\end\\\n")
    with pytest.raises(ASRError, match="bad.arpa.*failed"):
        write_binary(tmp_path / "bad.arpa", tmp_path / "x.bin", build_binary=_build_binary())
    assert not (tmp_path / "x.bin").exists()
    # no build_binary anywhere: what to run
    monkeypatch.setenv("ASR_KENLM_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    with pytest.raises(ASRError, match="asr build-kenlm"):
        find_build_binary()
    assert main(["build-ngram", "--arpa", str(tmp_path / "bad.arpa")]) == 1
    assert "--binary" in capsys.readouterr().err
    # no kenlm module: the file and the fix
    monkeypatch.setitem(sys.modules, "kenlm", None)
    with pytest.raises(ASRError, match=r"lm\.probing.*kenlm python module"):
        KenlmLM(bins["probing"])


def test_build_kenlm_is_idempotent_and_explains_what_is_missing(tmp_path, monkeypatch):
    from asr.ngram import kenlm_build

    prefix = tmp_path / "k"
    (prefix / "bin").mkdir(parents=True)
    for p in kenlm_build.PROGRAMS:
        (prefix / "bin" / p).write_text("#!/bin/sh\n")
    assert kenlm_build.build(prefix, cxx="no-such-compiler") == prefix / "bin"  # there already: nothing to do
    with pytest.raises(ASRError, match="no C.. compiler 'no-such-compiler'"):
        kenlm_build.build(prefix, cxx="no-such-compiler", force=True)
    if shutil.which("g++") is None:
        return
    (tmp_path / "src").mkdir()
    with pytest.raises(ASRError, match="not the kenlm source release"):
        kenlm_build.build(tmp_path / "k2", sdist=tmp_path / "src", cxx="g++")


def _packages(tmp_path, arpa, binary):
    """Two packages of one acoustic model: with lm.arpa, and with lm.binary."""
    from _runtime_helpers import make_package

    from asr.package import write_manifest

    pkg_a, pkg_b = tmp_path / "pkg_arpa", tmp_path / "pkg_bin"
    make_package(pkg_a, bidirectional=True, hidden=16, layers=1)
    (pkg_a / "decode.yaml").write_text("method: beam\nbeam: 6\nngram_weight: 0.8\nbeta: 1.0\nunk_offset: -3.0\n")
    shutil.copytree(pkg_a, pkg_b)
    shutil.copyfile(arpa, pkg_a / "lm.arpa")
    shutil.copyfile(binary, pkg_b / "lm.binary")
    write_manifest(pkg_a)
    write_manifest(pkg_b)
    return pkg_a, pkg_b


def test_package_with_a_binary_lm_decodes_like_the_arpa_package(tmp_path, lms, capsys):
    pytest.importorskip("onnxruntime")
    from asr.cli import main
    from asr.export import export_package
    from asr.ngram.binary import KenlmLM
    from asr.recognizer import Recognizer
    from asr.recognizer.spec import read_runtime_spec

    d, _, bins = lms
    pkg_a, pkg_b = _packages(tmp_path, d / "lm.arpa", bins["probing"])
    export_package(pkg_b, tmp_path / "onnx", log=lambda *a: None, check_lengths=(7,))
    spec = read_runtime_spec(tmp_path / "onnx")
    assert spec.ngram is not None and spec.ngram.file == "lm.binary" and spec.ngram.order == 3
    assert spec.ngram.ngrams == sum(len(g.grams) for g in read_arpa(d / "lm.arpa"))
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    lp = Recognizer(pkg_a, backend="torch").log_probs(x)
    lp = lp + 0.5 * rng.standard_normal(lp.shape).astype(np.float32)  # a livelier search than the tiny model's
    lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
    ref = Recognizer(pkg_a, backend="torch")
    for pkg, backend in ((pkg_b, "torch"), (tmp_path / "onnx", "onnx")):
        rec = Recognizer(pkg, backend=backend)
        assert isinstance(rec.ngram, KenlmLM)
        assert rec.decode(lp) == ref.decode(lp)
        h = beam_search(lp, rec.tokenizer, rec.decode_config, ngram=rec.ngram, nbest=3)
        _same_hyps(beam_search(lp, ref.tokenizer, ref.decode_config, ngram=ref.ngram, nbest=3), h)
    # the CLI: asr transcribe with the binary package gives the ARPA package's text
    import soundfile as sf

    sf.write(tmp_path / "a.wav", x, 16000)
    assert main(["transcribe", "--model", str(pkg_b), str(tmp_path / "a.wav")]) == 0
    assert capsys.readouterr().out.rstrip("\n").split("\t", 1)[1] == ref.transcribe(x, 16000)
