"""Output formats (asr/recognizer/formats.py): SRT and WebVTT read back by independent parsers
(``srt``, ``webvtt-py``), the JSON schema, Kaldi CTM lines; ``asr transcribe --format`` and the
CTM that ``asr decode`` writes beside ``hyp``."""
from __future__ import annotations

import io
import json
import re

import pytest

from asr.decode.align import Word
from asr.decode.beam import Hypothesis
from asr.recognizer.core import TimedSegment, Transcript
from asr.recognizer.formats import cues, format_result, timestamp, transcribe_options

CTM_LINE = re.compile(r"^(\S+) 1 (\d+\.\d{3}) (\d+\.\d{3}) (\S+) ([01]\.\d{3})$")
LONG = ("in the beginning the universe was created this has made a lot of people very angry and has "
        "been widely regarded as a bad move extraordinarily").split()


def _transcript() -> Transcript:
    """Three segments: a long one with words (wrapped into several cues), a short one, and one
    without word times (its time shared by characters)."""
    words, t = [], 1.0
    for w in LONG:
        d = 0.08 * len(w)
        words.append(Word(w, round(t, 3), round(t + d, 3), 0.5 + 0.04 * (len(w) % 10)))
        t += d + 0.15
    s1 = TimedSegment(0.8, t, " ".join(LONG), words)
    w2 = [Word("short", 30.2, 30.6, 0.9), Word("one", 30.7, 31.0, 0.1)]
    s2 = TimedSegment(30.0, 31.2, "short one", w2)
    s3 = TimedSegment(40.0, 46.0, "a segment without word times that is wrapped over two cues at least", [])
    nbest = (Hypothesis((2, 3), "a b", -3.5, -2.0, -2.5, 0.25), Hypothesis((2,), "a", -4.0, -2.0, -3.0, -0.5))
    return Transcript.from_segments([s1, s2, s3], 47.0, nbest)


@pytest.mark.parametrize("width,lines", [(42, 2), (16, 1), (10, 3)])
def test_srt_is_read_back_by_the_srt_library(width, lines):
    srt = pytest.importorskip("srt")
    t = _transcript()
    text = format_result("a.wav", t, "srt", max_line_chars=width, max_lines=lines)
    subs = list(srt.parse(text))
    assert [s.index for s in subs] == list(range(1, len(subs) + 1))
    assert srt.compose(subs, reindex=False) == text  # nothing the library had to repair
    for a, b in zip(subs, subs[1:]):
        assert a.start < a.end <= b.start
    for s in subs:
        rows = s.content.split("\n")
        assert 1 <= len(rows) <= lines and all(0 < len(r) <= width for r in rows), s.content
    assert " ".join(s.content.replace("\n", " ") for s in subs).split() == \
        [p for w in t.text.split() for p in [w[i:i + width] for i in range(0, len(w), width)]]
    # cues never cross a segment boundary, and worded cues start and end on their words
    starts = {round(w.start, 3) for w in t.words}
    ends = {round(w.end, 3) for w in t.words}
    for s in subs:
        a, b = s.start.total_seconds(), s.end.total_seconds()
        assert any(seg.start - 1e-3 <= a and b <= seg.end + 1e-3 for seg in t.segments), (a, b)
        if a < 40:
            assert round(a, 3) in starts and round(b, 3) in ends
    assert len(subs) > len(t.segments)  # the long segment was cut into several cues


def test_vtt_is_read_back_by_webvtt_py():
    webvtt = pytest.importorskip("webvtt")
    t = _transcript()
    text = format_result("a.wav", t, "vtt", max_line_chars=30, max_lines=2)
    assert text.startswith("WEBVTT\n\n")
    caps = webvtt.from_buffer(io.StringIO(text)).captions
    want = cues(t, 30, 2)
    assert len(caps) == len(want)
    for c, w in zip(caps, want):
        assert (c.start, c.end) == (timestamp(w.start, "."), timestamp(w.end, "."))
        assert c.lines == list(w.lines) and all(len(x) <= 30 for x in c.lines) and len(c.lines) <= 2
    starts = [c.start_in_seconds for c in caps]
    assert starts == sorted(starts) and starts[-1] >= 40
    assert [timestamp(x, ".") for x in (0.0, 61.2345, 3725.0)] == ["00:00:00.000", "00:01:01.234", "01:02:05.000"]


def test_one_cue_per_segment_without_a_line_limit():
    t = _transcript()
    got = cues(t, None)
    assert [(c.start, c.end, c.lines) for c in got] == [(s.start, s.end, (s.text,)) for s in t.segments]


def test_json_schema():
    t = _transcript()
    d = json.loads(format_result("dir/a b.wav", t, "json", nbest=True))
    assert set(d) == {"file", "text", "duration", "words", "segments", "nbest"}
    assert d["file"] == "dir/a b.wav" and d["text"] == t.text and d["duration"] == 47.0
    assert all(set(w) == {"word", "start", "end", "confidence"} for w in d["words"])
    assert [w["word"] for w in d["words"]] == [w.word for w in t.words]
    assert all(0 <= w["confidence"] <= 1 and w["start"] < w["end"] for w in d["words"])
    assert all(a["end"] <= b["start"] for a, b in zip(d["words"], d["words"][1:]))
    assert [set(s) for s in d["segments"]] == [{"start", "end", "text", "words"}] * 3
    assert d["segments"][2]["words"] == []
    assert d["nbest"][0] == {"text": "a b", "score": -3.5, "am_score": -2.0, "lm_score": -2.5, "bonus": 0.25}
    assert "nbest" not in json.loads(format_result("a.wav", t, "json"))
    assert format_result("a.wav", t, "json").count("\n") == 1  # one object per line (JSON lines)


def test_ctm_lines_are_kaldi_ctm():
    t = _transcript()
    out = format_result("dir/utt 1.wav", t, "ctm")
    rows = out.splitlines()
    assert len(rows) == len(t.words)
    prev = -1.0
    for row, w in zip(rows, t.words):
        m = CTM_LINE.match(row)
        assert m, row
        name, start, dur, word, conf = m.groups()
        assert name == "dir/utt_1.wav" and word == w.word
        assert float(start) == pytest.approx(w.start, abs=5e-4) and float(start) >= prev
        assert float(start) + float(dur) == pytest.approx(w.end, abs=1e-3)
        assert float(conf) == pytest.approx(w.confidence, abs=5e-4)
        prev = float(start)


def test_text_format_and_bad_requests():
    t = _transcript()
    assert format_result("a.wav", "hello there", "text") == "a.wav\thello there\n"
    assert format_result("a.wav", t, "text") == f"a.wav\t{t.text}\n"
    rows = format_result("a.wav", t, "text", nbest=True).splitlines()
    assert rows == ["a.wav\t1\t-3.5000\t-2.0000\t-2.5000\ta b", "a.wav\t2\t-4.0000\t-2.0000\t-3.0000\ta"]
    assert transcribe_options("text") == {"word_timestamps": False, "nbest": None}
    assert transcribe_options("srt", 3) == {"word_timestamps": True, "nbest": 3}
    from asr.errors import ConfigError

    with pytest.raises(ConfigError, match="xml"):
        transcribe_options("xml")
    with pytest.raises(TypeError, match="Transcript"):
        format_result("a.wav", "text only", "srt")


def test_transcribe_command_formats(tiny_model, capsys):
    from asr.cli import main

    wavs = sorted((tiny_model["dev"] / "wav").glob("*.wav"))[:2]
    files = [str(w) for w in wavs]
    assert main(["transcribe", "--model", str(tiny_model["package"]), *files]) == 0
    plain = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [p[0] for p in plain] == files
    assert main(["transcribe", "--model", str(tiny_model["package"]), "--format", "json", "--nbest", "2",
                 *files]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["file"] for d in docs] == files and [d["text"] for d in docs] == [p[1] for p in plain]
    assert all(" ".join(w["word"] for w in d["words"]) == d["text"] and 1 <= len(d["nbest"]) <= 2 for d in docs)
    assert main(["transcribe", "--model", str(tiny_model["package"]), "--format", "ctm", files[0]]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [r.split()[4] for r in rows] == docs[0]["text"].split()
    assert all(CTM_LINE.match(r) and r.split()[0] == wavs[0].stem for r in rows)
    assert main(["transcribe", "--model", str(tiny_model["package"]), "--format", "srt", "--max-line-chars",
                 "5", files[0]]) == 0
    srt_out = capsys.readouterr().out
    if docs[0]["text"]:
        assert srt_out.startswith("1\n00:00:0")
    assert all(len(r) <= 5 for b in srt_out.strip().split("\n\n") for r in b.split("\n")[2:])
    assert main(["transcribe", "--model", str(tiny_model["package"]), "--nbest", "0", files[0]]) != 0
    assert "--nbest 0" in capsys.readouterr().err


def test_decode_writes_ctm_beside_hyp(tiny_model, tmp_path):
    from asr.cli import main

    for nj in (1, 2):
        out = tmp_path / f"dec{nj}"
        assert main(["decode", "--model", str(tiny_model["package"]), "--data", str(tiny_model["dev"]),
                     "--out", str(out), "--nj", str(nj)]) == 0
        hyp = {line.split(" ", 1)[0]: line.split(" ", 1)[1:] for line in (out / "hyp").read_text().splitlines()}
        ctm = (out / "ctm").read_text().splitlines()
        assert all(CTM_LINE.match(r) for r in ctm)
        for utt, text in hyp.items():
            rows = [r.split() for r in ctm if r.split()[0] == utt]
            assert [r[4] for r in rows] == (text[0].split() if text else [])
            assert [float(r[2]) for r in rows] == sorted(float(r[2]) for r in rows)
        assert {r.split()[0] for r in ctm} <= set(hyp)
    assert (tmp_path / "dec1" / "ctm").read_text() == (tmp_path / "dec2" / "ctm").read_text()
