"""The model shipped inside the package: what ``asr.transcribe(path)`` uses when no model is given.

``asr/pretrained/<NAME>/onnx`` is an ONNX package (int8 acoustic model + LSTM LM, the torch-free
runtime reads it) and ``asr/pretrained/<NAME>/torch`` the same model as a PyTorch package (weights
stored in float16 to halve the size; loaded as float32), for the PyTorch backend and for
fine-tuning. ``asr/pretrained/<NAME>/README.md`` is its model card: the command that trained it,
corpus, configs, measured WERs beside the peers, and the licences of voices and texts.
``tools/make_pretrained.py`` writes both folders from a recipe's packages.
"""
from __future__ import annotations

from pathlib import Path

NAME = "tts_en_large_cpu"  # the recipe preset that trained it: recipes/tts_en/run.sh --preset large_cpu
ROOT = Path(__file__).resolve().parent / NAME


def pretrained_dir(backend: str = "auto") -> Path | None:
    """The shipped package for ``backend`` (auto and onnx: the ONNX one; torch: the PyTorch one),
    or None when this install has none (a source checkout without the model files)."""
    sub = "torch" if backend == "torch" else "onnx"
    p = ROOT / sub
    return p if (p / "package.json").is_file() else None


def summary() -> str:
    """The model card's one-paragraph summary (what it is, how good), for ``--help`` texts."""
    import json

    card = ROOT / "card.json"
    if not card.is_file():
        return ("No model is shipped with this install (asr/pretrained is empty): give --model DIR, set "
                "$ASR_MODEL, or train one with `make recipe`.")
    return str(json.loads(card.read_text()).get("summary", ""))


def model_card() -> str:
    """The model card's text ("" when the model is not installed)."""
    card = ROOT / "README.md"
    return card.read_text() if card.is_file() else ""
