"""Corpus preparation (asr.importers) on tiny corpora in the published LibriSpeech, AN4 and Common Voice
layouts, Kaldi data dir import, and clear errors for broken layouts."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import corpus_layouts as cl
from speech import needs_espeak

pytestmark = needs_espeak


def _check(data: Path, names, n_utts=None):
    from asr.data import check_datadir, prepare_datadir
    from asr.text import CharTokenizer

    tok = CharTokenizer()
    for name in names:
        prepare_datadir(data / name, tok, progress=False, log=lambda *_: None)
        dd = check_datadir(data / name, tok)
        for utt in dd.utt_ids:
            assert set(dd.text[utt]) <= set("abcdefghijklmnopqrstuvwxyz' ")
            assert utt.startswith(dd.utt2spk[utt])
            assert Path(dd.wav_scp[utt]).is_absolute()
        if n_utts is not None:
            assert len(dd.utt_ids) == n_utts[name], (name, len(dd.utt_ids))


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"asr.importers.{module}", *args], capture_output=True, text=True,
                          timeout=120)


def _one_clear_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("error:") == 1, r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


@pytest.fixture(scope="module")
def libri_mini(tmp_path_factory):
    return cl.librispeech(tmp_path_factory.mktemp("libri_mini"), mini=True)


def test_librispeech_mini(libri_mini, tmp_path):
    from asr.importers.librispeech import prepare_librispeech
    from asr.data import DataDir

    sets = prepare_librispeech(libri_mini / "LibriSpeech", tmp_path / "data", mini=True, log=lambda *_: None)
    assert sets == {"train": "train", "dev": "dev", "test": ["test"]}
    data = tmp_path / "data"
    _check(data, ["train", "dev", "test"], {"train": 18, "dev": 4, "test": 4})
    dev, test = DataDir.load(data / "dev"), DataDir.load(data / "test")
    assert not set(dev.utt2spk.values()) & set(test.utt2spk.values())  # dev-clean-2 split by speaker
    train = DataDir.load(data / "train")
    assert train.text["19-198-0005"] == "one two three"
    assert train.wav_scp["19-198-0005"].endswith("LibriSpeech/train-clean-5/19/198/19-198-0005.flac")
    lm = (data / "lm_text" / "train.txt").read_text().splitlines()
    assert len(lm) == 18 and "turn left" in lm
    assert len((data / "lm_text" / "dev.txt").read_text().splitlines()) == 4
    # idempotent: a second run leaves the files untouched
    mtimes = {p: p.stat().st_mtime_ns for p in (data / "train").iterdir()}
    prepare_librispeech(libri_mini, data, mini=True, log=lambda *_: None)  # the folder holding LibriSpeech/
    assert mtimes == {p: p.stat().st_mtime_ns for p in (data / "train").iterdir()}


def test_librispeech_full_subsets_and_extra_lm_text(tmp_path):
    from asr.importers.librispeech import prepare_librispeech

    root = cl.librispeech(tmp_path / "corpus", mini=False)
    lm = tmp_path / "librispeech-lm-norm.txt"
    lm.write_text("THE CAT SAT\nGO UP\nIT'S 1990 ALREADY\n")  # "go up" is a dev/test sentence: left out
    sets = prepare_librispeech(root, tmp_path / "data", lm_text=lm, log=lambda *_: None)
    assert sets["test"] == ["test_clean", "test_other"]
    _check(tmp_path / "data", ["train", "dev", "test_clean", "test_other"],
           {"train": 18, "dev": 4, "test_clean": 4, "test_other": 4})
    lm_lines = (tmp_path / "data" / "lm_text" / "train.txt").read_text().splitlines()
    assert lm_lines[-2:] == ["the cat sat", "it's nineteen ninety already"]
    assert len(lm_lines) == 20


def test_librispeech_broken_layout_is_one_clear_error(libri_mini, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(libri_mini, broken)
    (broken / "LibriSpeech" / "train-clean-5" / "119" / "198" / "119-198-0002.flac").unlink()
    r = _cli("librispeech", "--corpus-dir", str(broken), "--data-dir", str(tmp_path / "d"), "--mini")
    _one_clear_error(r, "119/198/119-198-0002.flac", "Expected layout", "<SPEAKER>-<CHAPTER>.trans.txt")
    assert not (tmp_path / "d" / "train").exists()  # nothing written before the check passed
    r = _cli("librispeech", "--corpus-dir", str(libri_mini), "--data-dir", str(tmp_path / "d"))
    _one_clear_error(r, "missing train-clean-100, dev-clean, test-clean, test-other", "Expected layout",
                     "use --mini")
    r = _cli("librispeech", "--corpus-dir", str(tmp_path / "nowhere"), "--data-dir", str(tmp_path / "d"), "--mini")
    _one_clear_error(r, "nowhere", "Expected layout")


@pytest.fixture(scope="module")
def an4_corpus(tmp_path_factory):
    return cl.an4(tmp_path_factory.mktemp("an4"))


def test_an4_sphere_and_raw(an4_corpus, tmp_path):
    from asr.audio import read_audio
    from asr.importers.an4 import prepare_an4
    from asr.data import DataDir

    prepare_an4(an4_corpus.parent, tmp_path / "data", wav_dir=tmp_path / "wav", dev_utts=3, log=lambda *_: None)
    data = tmp_path / "data"
    _check(data, ["train", "dev", "test"], {"train": 9, "dev": 3, "test": 3})
    train, dev, test = (DataDir.load(data / s) for s in ("train", "dev", "test"))
    assert not set(train.utt2spk.values()) & set(dev.utt2spk.values())
    assert all(p.endswith(".sph") for p in train.wav_scp.values())
    assert set(test.text.values()) == {"yes", "no", "go up"}
    utt = next(u for u in test.utt_ids if u.startswith("fcaw-"))
    assert test.wav_scp[utt].startswith(str(tmp_path / "wav" / "test"))  # .raw converted to WAV
    src = an4_corpus / "wav" / "an4test_clstk" / "fcaw" / f"{utt.split('-')[1]}-fcaw-b.raw"
    expect = np.fromfile(src, dtype=">i2").astype(np.float32) / 32768
    np.testing.assert_allclose(read_audio(test.wav_scp[utt]), expect, atol=1e-4)
    # the NIST SPHERE audio is read by soundfile (libsndfile) exactly
    sph = Path(train.wav_scp[train.utt_ids[0]])
    assert sf.info(sph).format == "NIST"


def test_an4_broken_layout(an4_corpus, tmp_path):
    broken = tmp_path / "an4"
    shutil.copytree(an4_corpus, broken)
    (broken / "etc" / "an4_test.transcription").unlink()
    r = _cli("an4", "--corpus-dir", str(broken), "--data-dir", str(tmp_path / "d"))
    _one_clear_error(r, "missing etc/an4_test.transcription", "Expected layout", "an4_clstk")
    shutil.copy2(an4_corpus / "etc" / "an4_test.transcription", broken / "etc")
    r = _cli("an4", "--corpus-dir", str(broken), "--data-dir", str(tmp_path / "d"))  # .raw without --wav-dir
    _one_clear_error(r, ".raw", "--wav-dir")
    shutil.rmtree(broken / "wav" / "an4_clstk" / "mcen")
    r = _cli("an4", "--corpus-dir", str(broken), "--data-dir", str(tmp_path / "d"), "--wav-dir", str(tmp_path / "w"))
    _one_clear_error(r, "missing wav/an4_clstk/mcen/an", "Expected layout")


@pytest.fixture(scope="module")
def cv_corpus(tmp_path_factory):
    return cl.commonvoice(tmp_path_factory.mktemp("cv"))


def test_commonvoice_mp3(cv_corpus, tmp_path):
    from asr.importers.commonvoice import prepare_commonvoice
    from asr.data import DataDir

    prepare_commonvoice(cv_corpus, tmp_path / "data", log=lambda *_: None)
    data = tmp_path / "data"
    _check(data, ["train", "dev", "test"], {"train": 18, "dev": 3, "test": 3})
    train = DataDir.load(data / "train")
    assert set(train.text.values()) == {"yes", "no", "go up please", "stop now", "turn left", "one two three"}
    assert all(p.endswith(".mp3") for p in train.wav_scp.values())
    durs = train.durations(progress=False)
    assert all(0.2 < d < 3.0 for d in durs.values())
    assert train.audio(train.utt_ids[0], 16000).dtype == np.float32  # 48 kHz mp3 resampled
    # validated.tsv minus dev/test speakers, clips and sentences
    prepare_commonvoice(cv_corpus, tmp_path / "data_v", train_tsv="validated", log=lambda *_: None)
    v = DataDir.load(tmp_path / "data_v" / "train")
    assert set(v.text.values()) == {"stop now", "turn left", "one two three"}


def test_commonvoice_broken_layout(cv_corpus, tmp_path):
    broken = tmp_path / "en"
    shutil.copytree(cv_corpus, broken)
    victim = sorted((broken / "clips").iterdir())[0]
    victim.unlink()
    r = _cli("commonvoice", "--corpus-dir", str(broken), "--data-dir", str(tmp_path / "d"))
    _one_clear_error(r, f"clips/{victim.name}", "Expected layout")
    (broken / "dev.tsv").unlink()
    r = _cli("commonvoice", "--corpus-dir", str(broken), "--data-dir", str(tmp_path / "d"))
    _one_clear_error(r, "missing dev.tsv", "client_id, path, sentence")
    (broken / "dev.tsv").write_text("path\tsentence\nx.mp3\thi\n")
    r = _cli("commonvoice", "--corpus-dir", str(broken), "--data-dir", str(tmp_path / "d"))
    _one_clear_error(r, "lacks column(s) ['client_id']")


def test_kaldi_datadir_import(libri_mini, tmp_path, monkeypatch):
    from asr.importers.kaldi_datadir import prepare_kaldi_datadirs
    from asr.data import DataDir
    from asr.data.datadir import write_kaldi_map

    # a Kaldi-style dir with relative paths (relative to the folder it was made in) and raw transcripts
    src = tmp_path / "kaldi"
    flacs = sorted((libri_mini / "LibriSpeech" / "train-clean-5").rglob("*.flac"))
    (src / "audio").mkdir(parents=True)
    for f in flacs:
        shutil.copy2(f, src / "audio" / f.name)
    for name, sel in (("train", flacs[:10]), ("dev", flacs[10:14]), ("eval1", flacs[14:16]), ("eval2", flacs[16:])):
        d = src / "data" / name
        d.mkdir(parents=True)
        write_kaldi_map(d / "wav.scp", {f.stem: f"audio/{f.name}" for f in sel})
        write_kaldi_map(d / "text", {f.stem: f"HELLO, {f.stem.split('-')[2]} World!" for f in sel})
        if name != "eval2":
            write_kaldi_map(d / "utt2spk", {f.stem: f.stem.split("-")[0] for f in sel})
    monkeypatch.chdir(src)
    sets = prepare_kaldi_datadirs("data/train", "data/dev", ["data/eval1", "data/eval2"], tmp_path / "out",
                                  log=lambda *_: None)
    assert sets["test"] == ["test_eval1", "test_eval2"]
    assert (tmp_path / "out" / "test_sets").read_text().split() == ["test_eval1", "test_eval2"]
    _check(tmp_path / "out", ["train", "dev", "test_eval1", "test_eval2"],
           {"train": 10, "dev": 4, "test_eval1": 2, "test_eval2": 2})
    t = DataDir.load(tmp_path / "out" / "train")
    assert t.text[t.utt_ids[0]] == "hello zero zero zero zero world"
    assert Path(t.wav_scp[t.utt_ids[0]]).is_absolute()
    # Kaldi pipes are refused with the conversion hint
    write_kaldi_map(src / "data" / "dev" / "wav.scp", {f.stem: f"flac -c -d -s {f} |" for f in flacs[10:14]})
    r = subprocess.run([sys.executable, "-m", "asr.importers.kaldi_datadir", "--train", "data/train", "--dev",
                        "data/dev", "--test", "data/eval1", "--data-dir", str(tmp_path / "o2")],
                       capture_output=True, text=True, cwd=src)
    _one_clear_error(r, "4 problem(s) in wav.scp", "pipe command", "write the audio to files")
