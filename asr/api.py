"""Python API: ``transcribe(path)`` and ``load_model(dir)``.

>>> import asr
>>> asr.transcribe("speech.flac")                      # default model location, see below
>>> m = asr.load_model("recipes/tts_en/exp/model")     # load once ...
>>> m.transcribe("a.wav"); m.transcribe(samples, sample_rate=8000)   # ... use many times
>>> t = asr.transcribe("a.wav", word_timestamps=True)  # Transcript: text, words (times, confidences), segments
>>> [(w.word, w.start, w.end, w.confidence) for w in t.words]
>>> m.transcribe("a.wav", nbest=5).nbest               # 5 hypotheses with score, am_score, lm_score
>>> asr.transcribe("call.wav", hotwords={"kubernetes": 3.0}, lexicon=["deploy", "the", "kubernetes"])

Any file soundfile reads, at any rate and channel count, of any length: a file is read in blocks
and cut at quiet points into ≤ 30 s pieces as it is read (:func:`asr.segment.iter_pieces`), so
memory stays bounded however long the file is. ``load_model`` returns an
:class:`asr.recognizer.Recognizer` for a package with ``model.pt`` (PyTorch) and for one with
only ``model.onnx`` (``asr export``; onnxruntime, no torch) alike.

Hotwords (``["phrase", ...]``, ``[("phrase", boost), ...]`` or ``{"phrase": boost}``; the boost is a
bonus per token, default ``decode.hotword_weight``) and a lexicon (the only words allowed) use the
CTC prefix beam search, also for a package whose ``decode.yaml`` says greedy (see
:mod:`asr.decode.hotwords`); ``nbest=N`` returns the N best hypotheses (beam search).

Default model when ``model`` is not given: ``$ASR_MODEL`` if set, else the model shipped inside
the package (:mod:`asr.pretrained`: its ONNX package, or its PyTorch one for ``backend="torch"``;
the model card ``asr/pretrained/*/README.md`` says what it is and how good), else (an install
without it) ``recipes/tts_en/exp/model`` of this checkout (written by ``make recipe``), else
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


def default_model_dir(backend: str = "auto") -> Path:
    """The model used when none is given: ``$ASR_MODEL``, the shipped one, the recipe's (see above)."""
    from .pretrained import pretrained_dir

    env = os.environ.get("ASR_MODEL")
    if env:
        return Path(env)
    shipped = pretrained_dir(backend)
    if shipped is not None:
        return shipped
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

    pkg = Path(model) if model is not None else default_model_dir(kwargs.get("backend", "auto"))
    return Recognizer(pkg, device=device, **kwargs)


_CACHE: dict[tuple, object] = {}


def transcribe(path, model: str | os.PathLike | None = None, sample_rate: int | None = None, *,
               word_timestamps: bool = False, nbest: int | None = None, hotwords=None, lexicon=None):
    """Text of one audio file (or array with ``sample_rate``), with optional ``hotwords`` and
    ``lexicon`` (see the module doc). With ``word_timestamps=True`` or ``nbest=N``, an
    :class:`asr.recognizer.Transcript` (see :meth:`asr.recognizer.Recognizer.transcribe`); ``nbest``
    also sets the beam search's N-best size (``nbest > 1`` uses the beam search). The loaded model
    is cached per model, word lists and N-best size (word times need no other model)."""
    from .decode.hotwords import hotword_entries, lexicon_entries

    pkg = str(Path(model).resolve()) if model is not None else str(default_model_dir().resolve())
    options: dict = {}
    if hotwords is not None:
        options["hotwords"] = hotword_entries(hotwords)
    if lexicon is not None:
        options["lexicon"] = lexicon_entries(lexicon)
    if nbest is not None:
        options["nbest"] = nbest
    key = (pkg, options.get("hotwords"), options.get("lexicon"), nbest)
    if key not in _CACHE:
        _CACHE[key] = load_model(pkg, **options)
    return _CACHE[key].transcribe(path, sample_rate=sample_rate, word_timestamps=word_timestamps, nbest=nbest)
