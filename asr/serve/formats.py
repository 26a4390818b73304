"""Transcription responses: the server's own JSON and the OpenAI ``response_format`` kinds
(json, text, srt, vtt, verbose_json) from one list of timed segments."""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


@dataclass(frozen=True)
class Transcript:
    """What one upload decodes to."""

    segments: Sequence  # asr.recognizer.TimedSegment (start, end, text, words), speech segments in order
    duration: float  # seconds of audio in the upload

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)


def _words(seg) -> list[dict]:
    return [{"word": w, "start": round(float(a), 3), "end": round(float(b), 3)} for w, a, b in seg.words]


def transcript_json(t: Transcript, model: str) -> dict:
    """``POST /v1/transcribe``: text, segments (start/end seconds, text) and words (empty until the
    recognizer times words)."""
    segs = [{"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text, "words": _words(s)}
            for s in t.segments]
    return {"text": t.text, "duration": round(t.duration, 3), "model": model, "segments": segs,
            "words": [w for s in segs for w in s["words"]]}


def _timestamp(seconds: float, sep: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def srt(t: Transcript) -> str:
    return "".join(f"{i}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{s.text}\n\n"
                   for i, s in enumerate(t.segments, 1))


def vtt(t: Transcript) -> str:
    return "WEBVTT\n\n" + "".join(f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.text}\n\n"
                                  for s in t.segments)


def _compression_ratio(text: str) -> float:
    """As Whisper reports it: bytes of the text / bytes of its zlib compression."""
    b = text.encode()
    return round(len(b) / len(zlib.compress(b)), 3) if b else 0.0


def verbose_json(t: Transcript, tokenizer, language: str) -> dict:
    """OpenAI's verbose_json. Whisper's ``avg_logprob`` and ``no_speech_prob`` are left out: this
    recognizer does not compute them (clients treat the fields as optional); ``seek`` is the
    segment start in 10 ms frames, ``temperature`` 0 (decoding is deterministic)."""
    segs = [{"id": i, "seek": int(round(s.start * 100)), "start": round(s.start, 3), "end": round(s.end, 3),
             "text": s.text, "tokens": tokenizer.encode(s.text), "temperature": 0.0,
             "compression_ratio": _compression_ratio(s.text)} for i, s in enumerate(t.segments)]
    words = [w for s in t.segments for w in _words(s)]
    return {"task": "transcribe", "language": language, "duration": round(t.duration, 3), "text": t.text,
            "segments": segs, "words": words}
