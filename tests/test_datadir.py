"""asr.data: Kaldi data dirs — round trip, segments, validator, ops, CLI."""
from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.data import (
    DataDir,
    Segment,
    check_datadir,
    combine,
    fix_datadir,
    prepare_datadir,
    read_kaldi_map,
    split,
    subset,
    validate_datadir,
    write_kaldi_map,
)
from asr.errors import DataDirError, TextError


class Tok:
    """Duck-typed character tokenizer (same token set as asr.text.CharTokenizer)."""

    tokens = ["<blank>", "|", "'"] + list(string.ascii_lowercase)

    def encode(self, text):
        bad = sorted({c for c in text if c != " " and c not in self.tokens})
        if bad:
            raise TextError(f"characters not in the token set: {' '.join(repr(c) for c in bad)}")
        return [self.tokens.index("|" if c == " " else c) for c in text]


SPEAKERS = ["spka", "spkb", "spkc", "spkd"]


def make_dir(root: Path, n_per_spk: int = 3, sr: int = 16000, relative: bool = True) -> Path:
    """A valid data dir (written deliberately unsorted) with audio under root/data/wav."""
    d = root / "data"
    (d / "wav").mkdir(parents=True)
    wav, text, utt2spk = [], [], []
    rng = np.random.default_rng(0)
    for s in reversed(SPEAKERS):
        for i in range(n_per_spk):
            utt = f"{s}-u{i}"
            p = d / "wav" / f"{utt}.wav"
            sf.write(p, (0.1 * rng.standard_normal(int(sr * (0.2 + 0.1 * i)))).astype(np.float32), sr, subtype="PCM_16")
            wav.append(f"{utt} {'wav/' + p.name if relative else p}")
            text.append(f"{utt} hello world number {'abc'[i % 3]}")
            utt2spk.append(f"{utt} {s}")
    for name, lines in [("wav.scp", wav), ("text", text), ("utt2spk", utt2spk)]:
        (d / name).write_text("\n".join(lines) + "\n")
    return d


def test_read_write_kaldi_map(tmp_path):
    p = tmp_path / "m"
    p.write_text("b two words\na one\n\nc\n")
    m = read_kaldi_map(p)
    assert list(m) == ["b", "a", "c"] and m["b"] == "two words" and m["c"] == ""
    write_kaldi_map(tmp_path / "out", m)
    assert (tmp_path / "out").read_text() == "a one\nb two words\nc\n"
    p.write_text("a 1\na 2\n")
    with pytest.raises(DataDirError, match="duplicate id 'a'"):
        read_kaldi_map(p)


def test_round_trip_and_relative_paths(tmp_path, monkeypatch):
    d = make_dir(tmp_path)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative wav paths now resolve via the data dir
    dd = DataDir.load(d)
    assert dd.utt_ids == sorted(dd.utt_ids) and len(dd) == 12
    assert dd.text["spka-u1"] == "hello world number b"
    assert dd.spk2utt()["spkb"] == ["spkb-u0", "spkb-u1", "spkb-u2"]
    assert dd.audio("spka-u2").shape == (int(16000 * 0.4),)
    assert dd.audio("spka-u2", 8000).shape == (int(8000 * 0.4),)
    durs = dd.durations()
    assert durs["spka-u0"] == pytest.approx(0.2)
    out = dd.save(tmp_path / "copy")
    assert Path(out.wav_scp["spka-u0"]).is_absolute()  # found via the source dir -> made absolute
    again = DataDir.load(tmp_path / "copy")
    assert again.text == dd.text and again.utt2spk == dd.utt2spk
    np.testing.assert_array_equal(again.audio("spkc-u1"), dd.audio("spkc-u1"))
    assert (tmp_path / "copy" / "spk2utt").read_text().startswith("spka spka-u0 spka-u1 spka-u2\n")
    assert validate_datadir(tmp_path / "copy", Tok()) == []


def test_segments(tmp_path):
    d = tmp_path / "seg"
    d.mkdir()
    sr = 8000
    x = (0.1 * np.random.default_rng(0).standard_normal(sr * 3)).astype(np.float32)
    sf.write(d / "rec1.wav", x, sr, subtype="FLOAT")
    sf.write(d / "rec2.wav", x[: sr], sr, subtype="FLOAT")
    (d / "wav.scp").write_text(f"rec1 {d / 'rec1.wav'}\nrec2 {d / 'rec2.wav'}\n")
    (d / "segments").write_text("u1 rec1 0 1.0\nu2 rec1 1.0 2.5\nu3 rec1 2.5 -1\nu4 rec2 0.25 0.5\n")
    (d / "text").write_text("u1 a\nu2 b\nu3 c\nu4 d\n")
    (d / "utt2spk").write_text("u1 s1\nu2 s1\nu3 s1\nu4 s2\n")
    dd = check_datadir(d, Tok(), check_audio=True)
    assert dd.segments["u2"] == Segment("rec1", 1.0, 2.5)
    np.testing.assert_array_equal(dd.audio("u2", None), x[sr : int(2.5 * sr)])
    assert len(dd.audio("u3", 16000)) == 16000 // 2
    assert dd.durations() == pytest.approx({"u1": 1.0, "u2": 1.5, "u3": 0.5, "u4": 0.25})
    sub = subset(dd, ["u4"], tmp_path / "sub")
    assert list(sub.wav_scp) == ["rec2"] and list(sub.segments) == ["u4"]
    assert validate_datadir(tmp_path / "sub", check_audio=True) == []
    # a segment past the end of its recording is caught by the deep check
    (d / "segments").write_text("u1 rec1 0 1.0\nu2 rec1 1.0 2.5\nu3 rec1 2.5 -1\nu4 rec2 0.25 9\n")
    problems = validate_datadir(d, check_audio=True)
    assert len(problems) == 1 and "'u4'" in problems[0] and "outside" in problems[0]


def test_broken_dir_reports_every_problem_once(tmp_path):
    d = make_dir(tmp_path, relative=False)
    prepare_datadir(d, log=lambda s: None)  # valid, sorted, with utt2dur + spk2utt
    (d / "spk2utt").unlink()

    def edit(name, fn):
        lines = (d / name).read_text().splitlines()
        (d / name).write_text("\n".join(fn(lines)) + "\n")

    expected = {  # utt id -> what its message says
        "spka-u0": "audio file not found",
        "spka-u1": "pipe",
        "spkb-u0": "empty transcript",
        "spkb-u1": "not in the token set",
        "spkb-u2": "duplicate id",
        "spkc-u0": "has no line in utt2spk",
        "spkc-u1": "expected '<utt-id> <speaker-id>'",
        "zzz-extra": "is not in wav.scp",
        "spkd-u1": "not sorted",
    }
    (d / "wav" / "spka-u0.wav").unlink()
    edit("wav.scp", lambda L: [ln if not ln.startswith("spka-u1 ") else "spka-u1 sph2pipe -f wav a.sph |" for ln in L])
    edit(
        "text",
        lambda L: [
            {"spkb-u0": "spkb-u0", "spkb-u1": "spkb-u1 hello World 42"}.get(ln.split()[0], ln) for ln in L
        ]
        + ["zzz-extra fine words"],
    )
    edit("text", lambda L: sum(([ln, ln + " again"] if ln.startswith("spkb-u2 ") else [ln] for ln in L), []))
    edit("utt2spk", lambda L: [ln + " extra" if ln.startswith("spkc-u1 ") else ln for ln in L if not ln.startswith("spkc-u0 ")])
    edit("utt2dur", lambda L: L[:10] + [L[11], L[10]])  # spkd-u2 before spkd-u1

    problems = validate_datadir(d, Tok())
    assert len(problems) == len(expected), "\n".join(problems)
    for utt, what in expected.items():
        hits = [p for p in problems if f"'{utt}'" in p]
        assert len(hits) == 1, (utt, hits)
        assert what in hits[0], (utt, hits[0])
    assert "utt2dur:12:" in [p for p in problems if "not sorted" in p][0]
    with pytest.raises(DataDirError) as ei:
        check_datadir(d, Tok())
    assert f"has {len(expected)} problems" in str(ei.value)


def test_missing_required_files_and_dir(tmp_path):
    assert "does not exist" in validate_datadir(tmp_path / "nope")[0]
    (tmp_path / "d").mkdir()
    problems = validate_datadir(tmp_path / "d")
    assert len(problems) == 3 and all("required file missing" in p for p in problems)
    assert len(validate_datadir(tmp_path / "d", require_text=False)) == 2
    with pytest.raises(DataDirError, match="wav.scp: required file missing"):
        DataDir.load(tmp_path / "d")


def test_feats_scp_checked(tmp_path):
    d = make_dir(tmp_path)
    dd = prepare_datadir(d, log=lambda s: None)
    (tmp_path / "dump").mkdir()
    feats = {}
    for u in dd.utt_ids:
        np.save(tmp_path / "dump" / f"{u}.npy", np.zeros((3, 2), np.float32))
        feats[u] = str(tmp_path / "dump" / f"{u}.npy")
    write_kaldi_map(d / "feats.scp", feats)
    assert validate_datadir(d) == []
    (tmp_path / "dump" / "spkc-u2.npy").unlink()
    problems = validate_datadir(d)
    assert len(problems) == 1 and "'spkc-u2'" in problems[0] and "feature file not found" in problems[0]


def test_pipe_entry_is_a_clear_error(tmp_path):
    d = make_dir(tmp_path)
    with open(d / "wav.scp", "a") as f:
        f.write("zz-pipe sox x.wav -t wav - |\n")
    with pytest.raises(DataDirError, match="pipe commands are not supported; write the audio to files"):
        DataDir.load(d)


def test_split_subset_combine_fix(tmp_path):
    d = make_dir(tmp_path)
    dd = prepare_datadir(d, log=lambda s: None)
    parts = split(dd, 2, tmp_path / "split2")
    assert [p.path.name for p in parts] == ["1", "2"]
    spk_sets = [set(p.utt2spk.values()) for p in parts]
    assert not (spk_sets[0] & spk_sets[1]) and spk_sets[0] | spk_sets[1] == set(SPEAKERS)
    assert sorted(u for p in parts for u in p.utt_ids) == dd.utt_ids
    for p in parts:
        assert validate_datadir(p.path, Tok()) == []
    parts5 = split(dd, 5, tmp_path / "split5")  # fewer speakers than parts: by utterance
    assert all(len(p) >= 1 for p in parts5) and sum(len(p) for p in parts5) == len(dd)
    back = combine([p.path for p in parts], tmp_path / "combined")
    assert back.utt_ids == dd.utt_ids and back.text == dd.text and back.utt2dur == pytest.approx(dd.utt2dur)
    assert validate_datadir(tmp_path / "combined", Tok(), check_audio=True) == []
    with pytest.raises(DataDirError, match="in both"):
        combine([parts[0].path, parts[0].path], tmp_path / "dup")
    sub = subset(dd, ["spka-u0", "spkd-u2"], tmp_path / "sub")
    assert sub.utt_ids == ["spka-u0", "spkd-u2"]
    with pytest.raises(DataDirError, match="not in the data dir"):
        subset(dd, ["nope"], tmp_path / "sub2")
    # fix: drop an utterance missing from text
    lines = (tmp_path / "sub" / "text").read_text().splitlines()
    (tmp_path / "sub" / "text").write_text(lines[1] + "\n")
    fixed, dropped = fix_datadir(tmp_path / "sub")
    assert dropped == ["spka-u0"] and fixed.utt_ids == ["spkd-u2"]
    assert validate_datadir(tmp_path / "sub") == []


def test_cli_prepare_and_validate(tmp_path, capsys):
    d = make_dir(tmp_path)
    assert validate_datadir(d) and "not sorted" in validate_datadir(d)[0]
    assert main(["prepare-data", str(d)]) == 0
    out = capsys.readouterr().out
    assert "computing utt2dur for 12" in out and "OK: 12 utterances, 4 speakers" in out
    mtime = (d / "utt2dur").stat().st_mtime_ns
    assert main(["prepare-data", str(d)]) == 0
    assert "already complete" in capsys.readouterr().out
    assert (d / "utt2dur").stat().st_mtime_ns == mtime  # idempotent: nothing rewritten
    assert main(["validate-data", str(d), "--check-audio"]) == 0
    assert "OK: 12 utterances, 4 speakers, 0.00 hours" in capsys.readouterr().out
    (d / "wav" / "spkb-u1.wav").write_bytes(b"not audio at all" * 10)
    assert main(["validate-data", str(d)]) == 0  # shallow check: file exists
    assert main(["validate-data", str(d), "--check-audio"]) == 1
    out = capsys.readouterr().out
    assert "'spkb-u1'" in out and "cannot read" in out and "1 problem" in out
    assert main(["prepare-data", str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_tokens_file(tmp_path, capsys):
    text_mod = pytest.importorskip("asr.text")
    if not hasattr(text_mod, "CharTokenizer"):
        pytest.skip("asr.text.CharTokenizer not available yet")
    d = make_dir(tmp_path)
    tok = text_mod.CharTokenizer()
    tok.save(tmp_path / "tokens.txt")
    assert main(["prepare-data", str(d), "--tokens", str(tmp_path / "tokens.txt")]) == 0
    with open(d / "text", "a") as f:
        f.write("")
    lines = (d / "text").read_text().splitlines()
    lines[0] = lines[0] + " Ünïcode!"
    (d / "text").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["validate-data", str(d), "--tokens", str(tmp_path / "tokens.txt")]) == 1
    assert lines[0].split()[0] in capsys.readouterr().out
