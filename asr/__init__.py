"""asr: bidirectional-LSTM CTC speech recognition — recipes, LSTM-LM beam search, ONNX runtime.

``asr.transcribe(path)`` and ``asr.load_model(dir)`` are the Python API (see asr/api.py).
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["transcribe", "load_model", "__version__"]


def __getattr__(name):  # lazy: importing asr must not import torch (the runtime is torch-free)
    if name in ("transcribe", "load_model"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'asr' has no attribute {name!r}")
