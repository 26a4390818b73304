"""Scoring matches jiwer on hand-made cases; files written by asr score."""
from __future__ import annotations

import json

import jiwer
import pytest

from asr.score import error_rates, score_dir


CASES = [
    (["the cat sat", "on the mat"], ["the cat sat", "on the mat"]),
    (["the cat sat", "on the mat"], ["the bat sat down", "on mat"]),
    (["a b c d"], [""]),
    (["hello world"], ["hello there world again"]),
]


@pytest.mark.parametrize("refs,hyps", CASES)
def test_error_rates_match_jiwer(refs, hyps):
    r = error_rates(refs, hyps)
    assert r["wer"] == pytest.approx(jiwer.wer(refs, hyps))
    assert r["cer"] == pytest.approx(jiwer.cer(refs, hyps))
    o = jiwer.process_words(refs, hyps)
    assert (r["substitutions"], r["deletions"], r["insertions"]) == (o.substitutions, o.deletions, o.insertions)


def test_hand_counted_case():
    r = error_rates(["the cat sat", "on the mat"], ["the bat sat down", "on mat"])
    # 1 sub (cat->bat), 1 ins (down), 1 del (the) over 6 reference words
    assert (r["substitutions"], r["insertions"], r["deletions"], r["ref_words"]) == (1, 1, 1, 6)
    assert r["wer"] == pytest.approx(3 / 6)


def test_score_dir_writes_summary_alignments_and_results(tmp_path):
    data, dec, exp = tmp_path / "data", tmp_path / "exp" / "decode_test", tmp_path / "exp"
    data.mkdir()
    dec.mkdir(parents=True)
    (data / "text").write_text("u1 the cat sat\nu2 on the mat\nu3 hello\n")
    (dec / "hyp").write_text("u1 the bat sat\nu2 on the mat\n")  # u3 missing -> all deletions
    r = score_dir(data, dec, exp, name="test_greedy")
    assert r["missing_hyps"] == 1
    assert r["wer"] == pytest.approx(jiwer.wer(["the cat sat", "on the mat", "hello"], ["the bat sat", "on the mat", ""]))
    assert json.loads((dec / "wer.json").read_text())["substitutions"] == 1
    ali = (dec / "alignments.txt").read_text()
    assert "u1" in ali and "REF: the cat sat" in ali and "HYP: the bat sat" in ali
    score_dir(data, dec, exp, name="test_greedy")  # rerun replaces its row
    score_dir(data, dec, exp, name="dev_greedy")
    rows = [l for l in (exp / "RESULTS.md").read_text().splitlines() if l.startswith("| ") and "decode" not in l]
    assert [l.split("|")[1].strip() for l in rows] == ["dev_greedy", "test_greedy"]


def test_hyp_with_unknown_utterance_is_an_error(tmp_path):
    from asr.errors import DataDirError

    (tmp_path / "text").write_text("u1 a\n")
    (tmp_path / "hyp").write_text("u1 a\nzz b\n")
    with pytest.raises(DataDirError, match="zz"):
        score_dir(tmp_path, tmp_path)
