"""tools/bench/peers.py: the scoring every system shares (normalisation, WER) on hand-made
hypotheses, the table, and -- only where pocketsphinx is installed -- that it recognises one
pocketsphinx-testdata utterance."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
GOFORWARD = Path("/usr/share/pocketsphinx/test/data/goforward.raw")


@pytest.fixture(scope="module")
def peers():
    env = dict(os.environ)  # the bench pins BLAS/OpenMP threads to 1 on import: keep the tests' own
    try:
        spec = importlib.util.spec_from_file_location("bench_peers", REPO / "tools" / "bench" / "peers.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses look their module up there
        spec.loader.exec_module(mod)
    finally:
        os.environ.clear()
        os.environ.update(env)
    return mod


def test_score_text_same_form_for_every_system(peers):
    # whisper-style punctuation, digits, currency and title abbreviations -> our character set
    assert peers.score_text("And so, my fellow Americans: ask not!") == "and so my fellow americans ask not"
    assert peers.score_text("Go forward 10 meters.") == "go forward ten meters"
    assert peers.score_text("Mr. Dashwood paid $5.50") == "mister dashwood paid five dollars fifty cents"
    assert peers.score_text("mister dashwood") == "mister dashwood"
    assert peers.score_text("We're gonna tackle, kinda") == peers.score_text("we're going to tackle kind of")
    # hesitations dropped on both sides; apostrophes inside words kept
    assert peers.score_text("Uh, I don't know, um... hmm") == "i don't know"
    assert peers.score_text("UM") == ""


def test_score_wer_on_hand_made_hyps(peers):
    refs = ["go forward ten meters", "he was not an ill disposed young man", "uh", "front left"]
    hyps = ["Go forward, 10 meters.", "he was not an illness those young man", "", "Front, left, right"]
    r = peers.score(refs, hyps)
    # 4 + 8 + 2 scored reference words (the lone "uh" is not scored): 2 substitutions + 1 insertion
    assert r["empty_refs"] == 1
    assert (r["substitutions"], r["deletions"], r["insertions"]) == (2, 0, 1)
    assert r["wer"] == pytest.approx(3 / 14)
    assert peers.score(["a b c"], ["A. B. C."])["wer"] == 0.0
    assert peers.score(["one two"], [""])["wer"] == 1.0


def test_table_lists_every_system_and_unavailable_peers(peers):
    ds = peers.DataSet("real_dev", ["u1", "u2"], ["one", "two"], [np.zeros(16000, np.float32)] * 2)
    res = {"ours-greedy": {"real_dev": peers.Result(0.25, 0.1, 0.0123, ["one", "too"])}}
    labels = {"ours-greedy": "ours greedy", "pocketsphinx": "pocketsphinx"}
    table = peers.format_table(labels, res, [ds], {"pocketsphinx": "pocketsphinx is not installed"})
    lines = table.splitlines()
    assert lines[0] == "| system | real_dev WER % | real_dev RTF |"
    assert lines[2] == "| ours greedy | 25.0 | 0.012 |"
    assert lines[3] == "| pocketsphinx | n/a | n/a |"
    assert "real_dev: 2 utterances, 0.0 min" in table
    assert "pocketsphinx: unavailable: pocketsphinx is not installed" in table
    br = peers.format_breakdown(labels, res, ds)
    assert "| u1 | 1 | 0.0 |" in br and "| u2 | 1 | 100.0 |" in br


def test_pocketsphinx_recognises_testdata_utterance(peers):
    pytest.importorskip("pocketsphinx")
    if not GOFORWARD.is_file():
        pytest.skip(f"{GOFORWARD} missing (apt-get install pocketsphinx-testdata)")
    system = peers.load_pocketsphinx()
    wave = np.fromfile(GOFORWARD, dtype="<i2").astype(np.float32) / 32768.0
    hyp = system.transcribe(wave)
    assert peers.score(["go forward ten meters"], [hyp])["wer"] <= 0.25, hyp
