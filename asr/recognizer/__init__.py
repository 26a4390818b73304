"""The one recognizer for PyTorch and ONNX packages (:class:`Recognizer`), its two backend
protocols, and ``load_model`` / ``transcribe`` with the default-model lookup."""
from __future__ import annotations

from .backend import AcousticBackend, AcousticInfo, LMScorer
from .core import Recognizer, TimedSegment

__all__ = ["Recognizer", "TimedSegment", "AcousticBackend", "AcousticInfo", "LMScorer"]
