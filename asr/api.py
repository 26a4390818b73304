"""Python API: ``transcribe(path)`` and ``load_model(dir)``.

>>> import asr
>>> asr.transcribe("speech.flac")                      # default model location, see below
>>> m = asr.load_model("recipes/tts_en/exp/model")     # load once ...
>>> m.transcribe("a.wav"); m.transcribe(samples, sample_rate=8000)   # ... use many times
>>> asr.transcribe("call.wav", hotwords={"kubernetes": 3.0}, lexicon=["deploy", "the", "kubernetes"])

Any file soundfile reads, at any rate and channel count, of any length: a file is read in blocks
and cut at quiet points into ≤ 30 s pieces as it is read (:func:`asr.segment.iter_pieces`), so
memory stays bounded however long the file is. ``load_model`` returns an
:class:`asr.recognizer.Recognizer` for a package with ``model.pt`` (PyTorch) and for one with
only ``model.onnx`` (``asr export``; onnxruntime, no torch) alike.

Hotwords (``["phrase", ...]``, ``[("phrase", boost), ...]`` or ``{"phrase": boost}``; the boost is a
bonus per token, default ``decode.hotword_weight``) and a lexicon (the only words allowed) use the
CTC prefix beam search, also for a package whose ``decode.yaml`` says greedy (see
:mod:`asr.decode.hotwords`); ``nbest=N`` sets the N-best size.

Default model location when ``model`` is not given: ``$ASR_MODEL`` if set, else
``recipes/tts_en/exp/model`` of this checkout (written by ``make recipe``), else
``~/.local/share/asr/model``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelPackageError

DEFAULT_LOCATIONS = (
    Path(__file__).resolve().parent.parent / "recipes" / "tts_en" / "exp" / "model",
    Path.home() / ".local" / "share" / "asr" / "model",
)


def default_model_dir() -> Path:
    env = os.environ.get("ASR_MODEL")
    if env:
        return Path(env)
    for p in DEFAULT_LOCATIONS:
        if (p / "package.json").is_file():
            return p
    raise ModelPackageError(
        "no model given and none found at the default locations ($ASR_MODEL, "
        + ", ".join(str(p) for p in DEFAULT_LOCATIONS)
        + "). Train one with `make recipe` (writes recipes/tts_en/exp/model), or pass model=DIR / set ASR_MODEL."
    )


def load_model(model: str | os.PathLike | None = None, device: str = "cpu", **kwargs):
    """Load a model package (PyTorch ``model.pt`` or ONNX ``model.onnx``) once for repeated use;
    keyword arguments go to :class:`asr.recognizer.Recognizer` (``backend``, ``int8``, ``beam``, ...)."""
    from .recognizer import Recognizer

    return Recognizer(Path(model) if model is not None else default_model_dir(), device=device, **kwargs)


_CACHE: dict[tuple, object] = {}


def transcribe(path, model: str | os.PathLike | None = None, sample_rate: int | None = None, *,
               hotwords=None, lexicon=None) -> str:
    """Text of one audio file (or array with ``sample_rate``), with optional ``hotwords`` and
    ``lexicon`` (see the module doc); the loaded model is cached per model and word lists."""
    from .decode.hotwords import hotword_entries, lexicon_entries

    pkg = str(Path(model).resolve()) if model is not None else str(default_model_dir().resolve())
    words = {}
    if hotwords is not None:
        words["hotwords"] = hotword_entries(hotwords)
    if lexicon is not None:
        words["lexicon"] = lexicon_entries(lexicon)
    key = (pkg, words.get("hotwords"), words.get("lexicon"))
    if key not in _CACHE:
        _CACHE[key] = load_model(pkg, **words)
    return _CACHE[key].transcribe(path, sample_rate=sample_rate)
