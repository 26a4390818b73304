"""Transcription responses: the server's own JSON and the OpenAI ``response_format`` kinds
(json, text, srt, vtt, verbose_json) from one :class:`asr.recognizer.Transcript` (the VAD
segments of an upload; SRT and WebVTT are :mod:`asr.recognizer.formats`' writers, one cue per
segment)."""
from __future__ import annotations

import zlib

from ..recognizer.core import Transcript
from ..recognizer.formats import srt as _srt
from ..recognizer.formats import vtt as _vtt
from ..recognizer.formats import word_dict

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")

__all__ = ["RESPONSE_FORMATS", "Transcript", "transcript_json", "srt", "vtt", "verbose_json"]


def _words(seg) -> list[dict]:
    return [word_dict(w) for w in seg.words]


def transcript_json(t: Transcript, model: str) -> dict:
    """``POST /v1/transcribe``: text, segments (start/end seconds, text) and words (empty until the
    recognizer times words)."""
    segs = [{"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text, "words": _words(s)}
            for s in t.segments]
    return {"text": t.text, "duration": round(t.duration, 3), "model": model, "segments": segs,
            "words": [w for s in segs for w in s["words"]]}


def srt(t: Transcript) -> str:
    return _srt(t, max_line_chars=None)


def vtt(t: Transcript) -> str:
    return _vtt(t, max_line_chars=None)


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
