"""Torch-free realtime use of the recognizer: streaming, VAD, the microphone demo.

Depends only on numpy, onnxruntime and soundfile (plus the numpy-only :mod:`asr.audio`,
:mod:`asr.decode` and :mod:`asr.recognizer`); importing it never imports torch.

    from asr.runtime import Recognizer, Stream
    rec = Recognizer("exp/onnx", threads=1, int8=False)
    rec.transcribe("a.wav")                 # -> str
    rec.transcribe_long("talk.flac")        # -> [TimedSegment(start, end, text)]
    s = Stream(rec); events = s.accept(chunk, 16000) + s.finish()
"""
from __future__ import annotations

from ..recognizer import Recognizer, TimedSegment

__all__ = ["Recognizer", "TimedSegment", "Stream", "StreamEvent"]


def __getattr__(name):
    if name in ("Stream", "StreamEvent"):
        from . import stream

        return getattr(stream, name)
    raise AttributeError(name)
