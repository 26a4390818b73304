"""The one recognizer for PyTorch and ONNX packages (:class:`Recognizer`), its two backend
protocols, and ``load_model`` / ``transcribe`` with the default-model lookup."""
from __future__ import annotations

from .backend import AcousticBackend, AcousticInfo, LMScorer
from ..decode.align import Word
from .core import Recognizer, TimedSegment, Transcript

__all__ = ["Recognizer", "TimedSegment", "Transcript", "Word", "AcousticBackend", "AcousticInfo", "LMScorer"]
