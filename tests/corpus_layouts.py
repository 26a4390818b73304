"""Tiny corpora in the published layouts of LibriSpeech, AN4 and Common Voice (espeak-ng speech).

Importable from tests as ``from corpus_layouts import ...``. Every builder returns the folder a user
would pass as ``--corpus_dir``.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

ESPEAK = shutil.which("espeak-ng")
SENTENCES = ["yes", "no", "go up", "stop now", "turn left", "one two three"]
VOICES = [("en-us", 170), ("en-gb", 150), ("en-us+f3", 140), ("en-gb+m3", 160)]


def speech(text: str, voice: str = "en-us", speed: int = 160, sample_rate: int = 16000) -> np.ndarray:
    """espeak-ng speech for ``text`` (float32 mono at ``sample_rate``)."""
    from asr.audio import resample

    r = subprocess.run([ESPEAK, "-v", voice, "-s", str(speed), "--stdout", text], check=True, capture_output=True)
    import io

    x, sr = sf.read(io.BytesIO(r.stdout), dtype="float32")
    return resample(x, sr, sample_rate) if sr != sample_rate else x


def librispeech(root: Path, mini: bool = True) -> Path:
    """LibriSpeech/<subset>/<SPK>/<CHAP>/<SPK>-<CHAP>-<UTT>.flac + <SPK>-<CHAP>.trans.txt."""
    subsets = {"train-clean-5": VOICES[:3], "dev-clean-2": VOICES[3:] + VOICES[:1]} if mini else {
        "train-clean-100": VOICES[:3], "dev-clean": VOICES[3:], "test-clean": VOICES[:1], "test-other": VOICES[1:2]}
    for n_set, (subset, voices) in enumerate(subsets.items()):
        for k, (voice, speed) in enumerate(voices):
            spk = str(19 + 1000 * n_set + 100 * k)
            chapter = str(198 + n_set)
            d = root / "LibriSpeech" / subset / spk / chapter
            d.mkdir(parents=True, exist_ok=True)
            lines = []
            for i, s in enumerate(SENTENCES[:4] if n_set else SENTENCES):
                utt = f"{spk}-{chapter}-{i:04d}"
                sf.write(d / f"{utt}.flac", speech(s, voice, speed), 16000, format="FLAC")
                lines.append(f"{utt} {s.upper()}")
            (d / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def an4(root: Path, raw_test: bool = True) -> Path:
    """an4/etc/an4_{train,test}.{transcription,fileids} + wav/an4_clstk/<spk>/<id>.sph (train) and
    wav/an4test_clstk/<spk>/<id>.raw (test: headerless big-endian 16-bit, like an4_raw.bigendian)."""
    base = root / "an4"
    (base / "etc").mkdir(parents=True, exist_ok=True)
    spks = {"train": ["fash", "fbbh", "mcen", "mjgk"], "test": ["fcaw"]}
    n = 100
    for split, sub in (("train", "an4_clstk"), ("test", "an4test_clstk")):
        trans, fileids = [], []
        for k, spk in enumerate(spks[split]):
            voice, speed = VOICES[k % len(VOICES)]
            for i, s in enumerate(SENTENCES[:3]):
                n += 1
                src = f"an{n}-{spk}-b"
                rel = f"{sub}/{spk}/{src}"
                d = base / "wav" / sub / spk
                d.mkdir(parents=True, exist_ok=True)
                x = speech(s, voice, speed)
                if split == "test" and raw_test:
                    (np.clip(x, -1, 1) * 32767).astype(">i2").tofile(d / f"{src}.raw")
                else:
                    sf.write(d / f"{src}.sph", x, 16000, format="NIST", subtype="PCM_16")
                trans.append(f"<s> {s.upper()} </s> ({src})")
                fileids.append(rel)
        (base / "etc" / f"an4_{split}.transcription").write_text("\n".join(trans) + "\n")
        (base / "etc" / f"an4_{split}.fileids").write_text("\n".join(fileids) + "\n")
    return base


CV_HEADER = "\t".join(["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes",
                       "age", "gender", "accents", "variant", "locale", "segment"])


def commonvoice(root: Path) -> Path:
    """<locale>/{train,dev,test,validated}.tsv + clips/common_voice_en_<n>.mp3 (48 kHz MP3 like the releases)."""
    base = root / "cv-corpus-test" / "en"
    (base / "clips").mkdir(parents=True, exist_ok=True)
    clients = {"train": [("a1" * 64, VOICES[0]), ("b2" * 64, VOICES[1]), ("c3" * 64, VOICES[2])],
               "dev": [("d4" * 64, VOICES[3])], "test": [("e5" * 64, VOICES[0])]}
    sentences = ["Yes.", "No!", "Go up, please?", "Stop now.", "\"Turn\" left", "One-two-three"]
    rows_all = []
    n = 1000
    for split, cl in clients.items():
        rows = []
        for cid, (voice, speed) in cl:
            for s in (sentences if split == "train" else sentences[:3]):
                n += 1
                name = f"common_voice_en_{n}.mp3"
                sf.write(base / "clips" / name, speech(s, voice, speed, 48000), 48000, format="MP3")
                rows.append(f"{cid}\t{name}\t{n:x}\t{s}\t\t2\t0\t\t\t\t\ten\t")
        (base / f"{split}.tsv").write_text(CV_HEADER + "\n" + "\n".join(rows) + "\n")
        rows_all += rows
    (base / "validated.tsv").write_text(CV_HEADER + "\n" + "\n".join(rows_all) + "\n")
    return base
