"""Transcription output formats: text, JSON, SRT, WebVTT and Kaldi CTM, from one
:class:`~asr.recognizer.core.Transcript` (or plain text).

``format_result(name, result, fmt)`` is what a command's per-file loop calls (``asr transcribe``
for each file, the server for an upload); ``transcribe_options(fmt, nbest)`` says what to ask the
recognizer for so that the format has what it needs (word times for json/srt/vtt/ctm).

* ``text``: ``NAME<TAB>text``; with N-best (``nbest=True``, more than one hypothesis) one line per
  hypothesis: ``NAME<TAB>rank<TAB>total<TAB>acoustic<TAB>lm<TAB>text``.
* ``json``: one object per line: ``file``, ``text``, ``duration``, ``words`` (word, start, end,
  confidence), ``segments`` (start, end, text, words), and ``nbest`` (text, score, am_score,
  lm_score, bonus) when asked.
* ``srt`` / ``vtt``: cues never cross a segment boundary (the ≤ 30 s pieces of a long file, or VAD
  segments); within a segment, words are wrapped into lines of at most ``max_line_chars``
  characters (a longer word is cut) and ``max_lines`` lines make a cue, timed from its first
  word's start to its last word's end. A segment without word times is wrapped the same way and
  its time shared among its cues by characters. ``max_line_chars=None``: one cue per segment.
* ``ctm``: Kaldi's ``NAME 1 START DURATION WORD CONFIDENCE`` per word (seconds, 3 decimals).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

FORMATS = ("text", "json", "srt", "vtt", "ctm")
SUFFIXES = {"text": ".txt", "json": ".json", "srt": ".srt", "vtt": ".vtt", "ctm": ".ctm"}  # one file per input


@dataclass(frozen=True)
class Cue:
    """One subtitle: its time span and its lines."""

    start: float  # seconds
    end: float  # seconds
    lines: tuple[str, ...]  # each at most max_line_chars characters


def transcribe_options(fmt: str, nbest: int | None = None) -> dict:
    """Keyword arguments for ``Recognizer.transcribe`` that give ``fmt`` what it shows."""
    if fmt not in FORMATS:
        from ..errors import ConfigError

        raise ConfigError(f"output format {fmt!r}: use one of {', '.join(FORMATS)}")
    return {"word_timestamps": fmt != "text", "nbest": nbest}


def _r(x: float) -> float:
    return round(float(x), 3)


def word_dict(w) -> dict:
    return {"word": w.word, "start": _r(w.start), "end": _r(w.end), "confidence": round(float(w.confidence), 4)}


def segment_dict(s) -> dict:
    return {"start": _r(s.start), "end": _r(s.end), "text": s.text, "words": [word_dict(w) for w in s.words]}


def hypothesis_dict(h) -> dict:
    return {"text": h.text, "score": round(h.score, 4), "am_score": round(h.am_score, 4),
            "lm_score": round(h.lm_score, 4), "bonus": round(h.bonus, 4)}


def transcript_dict(name: str, t, nbest: bool = False) -> dict:
    d = {"file": name, "text": t.text, "duration": _r(t.duration), "words": [word_dict(w) for w in t.words],
         "segments": [segment_dict(s) for s in t.segments]}
    if nbest:
        d["nbest"] = [hypothesis_dict(h) for h in t.nbest]
    return d


def timestamp(seconds: float, sep: str) -> str:
    """``HH:MM:SS,mmm`` (SRT, ``sep=","``) or ``HH:MM:SS.mmm`` (WebVTT)."""
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _wrap(items: Sequence[str], width: int) -> list[list[int]]:
    """Indices of ``items`` (words) packed greedily into lines of at most ``width`` characters."""
    lines: list[list[int]] = []
    n = 0
    for i, w in enumerate(items):
        if lines and n + 1 + len(w) <= width:
            lines[-1].append(i)
            n += 1 + len(w)
        else:
            lines.append([i])
            n = len(w)
    return lines


def _pieces(word: str, width: int) -> list[str]:
    return [word[i:i + width] for i in range(0, len(word), width)] or [word]


def cues(t, max_line_chars: int | None = 42, max_lines: int = 2) -> list[Cue]:
    """The subtitles of a transcript (see the module doc)."""
    out: list[Cue] = []
    for seg in t.segments:
        if not seg.text:
            continue
        if max_line_chars is None:
            out.append(Cue(seg.start, seg.end, (seg.text,)))
            continue
        if seg.words:  # (text, start, end) units: words, a word longer than a line cut into parts
            units = [(p, w.start, w.end) for w in seg.words for p in _pieces(w.word, max_line_chars)]
        else:
            units = [(p, None, None) for w in seg.text.split() for p in _pieces(w, max_line_chars)]
        lines = _wrap([u[0] for u in units], max_line_chars)
        n_chars = max(1, sum(len(u[0]) for u in units))
        done = 0
        for k in range(0, len(lines), max_lines):
            group = lines[k:k + max_lines]
            idx = [i for line in group for i in line]
            text = tuple(" ".join(units[i][0] for i in line) for line in group)
            if seg.words:
                start, end = units[idx[0]][1], units[idx[-1]][2]
            else:  # share the segment's time by characters
                chars = sum(len(units[i][0]) for i in idx)
                span = seg.end - seg.start
                start = seg.start + span * done / n_chars
                end = seg.start + span * (done + chars) / n_chars
                done += chars
            out.append(Cue(start, end, text))
    return out


def srt(t, max_line_chars: int | None = 42, max_lines: int = 2) -> str:
    return "".join(f"{i}\n{timestamp(c.start, ',')} --> {timestamp(c.end, ',')}\n" + "\n".join(c.lines) + "\n\n"
                   for i, c in enumerate(cues(t, max_line_chars, max_lines), 1))


def vtt(t, max_line_chars: int | None = 42, max_lines: int = 2) -> str:
    return "WEBVTT\n\n" + "".join(f"{timestamp(c.start, '.')} --> {timestamp(c.end, '.')}\n" + "\n".join(c.lines)
                                  + "\n\n" for c in cues(t, max_line_chars, max_lines))


def ctm_lines(name: str, words) -> str:
    """Kaldi CTM: ``NAME 1 START DURATION WORD CONFIDENCE`` per word."""
    return "".join(f"{name} 1 {w.start:.3f} {max(0.0, w.end - w.start):.3f} {w.word} {w.confidence:.3f}\n"
                   for w in words)


def format_result(name: str, result, fmt: str, *, nbest: bool = False, max_line_chars: int | None = 42,
                  max_lines: int = 2) -> str:
    """One input's output in ``fmt``; ``result`` is what ``transcribe(**transcribe_options(fmt))``
    returned (a str for plain text, else a Transcript). ``name`` identifies the input (CTM's
    recording id: no whitespace)."""
    transcribe_options(fmt)
    if isinstance(result, str):
        if fmt != "text":
            raise TypeError(f"format {fmt!r} needs a Transcript (transcribe(..., word_timestamps=True))")
        return f"{name}\t{result}\n"
    if fmt == "text":
        if nbest and len(result.nbest) > 1:
            return "".join(f"{name}\t{k}\t{h.score:.4f}\t{h.am_score:.4f}\t{h.lm_score:.4f}\t{h.text}\n"
                           for k, h in enumerate(result.nbest, 1))
        return f"{name}\t{result.text}\n"
    if fmt == "json":
        return json.dumps(transcript_dict(name, result, nbest), ensure_ascii=False) + "\n"
    if fmt == "srt":
        return srt(result, max_line_chars, max_lines)
    if fmt == "vtt":
        return vtt(result, max_line_chars, max_lines)
    return ctm_lines("_".join(name.split()) or "-", result.words)
