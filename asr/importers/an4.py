"""CMU AN4 (alphanumeric census database, ~1 h train / 130 test utterances) -> Kaldi data dirs.

Layout (as ``an4_sphere.tar.gz`` unpacks; ``--corpus-dir`` may be the ``an4`` folder or the folder
holding it)::

    an4/etc/an4_train.transcription   "<s> WORDS </s> (an251-fash-b)" lines
    an4/etc/an4_test.transcription
    an4/etc/an4_train.fileids          optional: "an4_clstk/fash/an251-fash-b" lines (audio path
    an4/etc/an4_test.fileids           under wav/ without extension); derived from the ids if absent
    an4/wav/an4_clstk/<spk>/<id>.sph   training audio
    an4/wav/an4test_clstk/<spk>/<id>.sph  test audio

Audio formats: ``.sph`` NIST SPHERE with PCM samples (read by soundfile/libsndfile; shorten-compressed
SPHERE is not: convert with ``sph2pipe -f wav``), ``.wav``/``.flac``, and the headerless ``.raw``
of ``an4_raw.bigendian.tar.gz`` (16 kHz, 16-bit, big-endian by default; ``--raw-byteorder little``
for little-endian), which is converted once to 16-bit WAV under ``--wav-dir``.

Utterance id ``<spk>-<an###>-<b>`` (speaker first), speaker = the AN4 speaker folder. AN4 has no dev
set: whole speakers are held out of the training list for ``dev`` (at least ``--dev-utts``
utterances, speakers chosen with a fixed seed). Output: ``train``, ``dev``, ``test``,
``lm_text/{train,dev}.txt``.

``python -m asr.importers.an4 --corpus-dir /data/an4 --data-dir data --wav-dir db/an4_wav``
"""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .layout import CorpusLayoutError, layout_error, require
from .writer import Utt, read_text_values, write_datadir, write_lm_text

EXPECTED = """\
  <corpus_dir>/an4/etc/an4_train.transcription   ("<s> WORDS </s> (an251-fash-b)" lines)
  <corpus_dir>/an4/etc/an4_test.transcription
  <corpus_dir>/an4/etc/an4_{train,test}.fileids   (optional)
  <corpus_dir>/an4/wav/an4_clstk/<spk>/<id>.{sph,wav,flac,raw}
  <corpus_dir>/an4/wav/an4test_clstk/<spk>/<id>.{sph,wav,flac,raw}"""
HINT = "Download an4_sphere.tar.gz from http://www.speech.cs.cmu.edu/databases/an4/ and unpack it."
AUDIO_EXTS = (".sph", ".wav", ".flac", ".raw")
WAV_SUBDIR = {"train": "an4_clstk", "test": "an4test_clstk"}
_LINE = re.compile(r"^(.*?)\s*\(([^()\s]+)\)\s*$")
_MARKUP = re.compile(r"</?s>|<sil>|\[[^\]]*\]|\+\+[^+]*\+\+")


def find_root(corpus_dir: str | os.PathLike) -> Path:
    d = Path(corpus_dir)
    for cand in (d, d / "an4"):
        if (cand / "etc").is_dir():
            return cand
    return d / "an4" if (d / "an4").is_dir() else d


def parse_transcription(path: Path) -> list[tuple[str, str]]:
    """``(source id, words)`` per line, sentence markers removed."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line.strip())
        if not m or len(m.group(2).split("-")) != 3:
            raise CorpusLayoutError(f"{path}:{n}: expected '<s> WORDS </s> (an251-fash-b)', got {line[:80]!r}")
        out.append((m.group(2), " ".join(_MARKUP.sub(" ", m.group(1)).split())))
    return out


def _find_audio(wav_root: Path, rel: str) -> Path | None:
    for ext in AUDIO_EXTS:
        p = wav_root / f"{rel}{ext}"
        if p.is_file():
            return p
    return None


def convert_raw(src: Path, dst: Path, byteorder: str = "big", sample_rate: int = 16000) -> Path:
    """Headerless 16-bit PCM ``.raw`` -> 16-bit WAV (skipped when ``dst`` is newer than ``src``)."""
    from ..audio import write_wav

    if dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime:
        return dst
    pcm = np.fromfile(src, dtype=">i2" if byteorder == "big" else "<i2")
    if pcm.size == 0:
        raise CorpusLayoutError(f"{src}: empty .raw file")
    write_wav(dst, pcm.astype(np.float32) / 32768.0, sample_rate)
    return dst


def read_split(root: Path, split: str, wav_dir: Path | None, raw_byteorder: str = "big") -> list[Utt]:
    trans = parse_transcription(root / "etc" / f"an4_{split}.transcription")
    fileids_path = root / "etc" / f"an4_{split}.fileids"
    rel_by_src: dict[str, str] = {}
    if fileids_path.is_file():
        for line in fileids_path.read_text(encoding="utf-8").split():
            rel_by_src[Path(line).name] = line
    utts, missing = [], []
    for src, words in trans:
        pre, spk, last = src.split("-")
        rel = rel_by_src.get(src, f"{WAV_SUBDIR[split]}/{spk}/{src}")
        audio = _find_audio(root / "wav", rel)
        if audio is None:
            missing.append(f"wav/{rel}.{{sph,wav,flac,raw}}")
            continue
        if audio.suffix == ".raw":
            if wav_dir is None:
                raise CorpusLayoutError(f"{audio}: headerless .raw audio needs --wav-dir to convert it to WAV")
            audio = convert_raw(audio, wav_dir / split / f"{src}.wav", raw_byteorder)
        utts.append(Utt(f"{spk}-{pre}-{last}", str(audio.resolve()), words, spk))
    if missing:
        raise layout_error(f"AN4 ({split} audio)", root, missing, EXPECTED, HINT)
    return utts


def _check_readable(utts: Sequence[Utt]) -> None:
    from ..audio import audio_info
    from ..errors import AudioError

    if not utts:
        return
    try:
        audio_info(utts[0].audio)
    except AudioError as e:
        raise CorpusLayoutError(
            f"{utts[0].audio}: soundfile cannot read it ({e}). NIST SPHERE must hold PCM samples: convert "
            "shorten-compressed .sph with 'sph2pipe -f wav' (or sox) to .wav files with the same names") from None


def hold_out_speakers(utts: Sequence[Utt], min_utts: int, seed: int = 0) -> tuple[list[Utt], list[Utt]]:
    """(train, dev): whole speakers, drawn in a seeded order, moved to dev until it has ``min_utts``."""
    spks = sorted({u.speaker for u in utts})
    order = np.random.default_rng(seed).permutation(len(spks))
    dev_spk: set[str] = set()
    count = 0
    for i in order:
        if count >= min_utts or len(dev_spk) >= len(spks) - 1:
            break
        dev_spk.add(spks[i])
        count += sum(u.speaker == spks[i] for u in utts)
    return [u for u in utts if u.speaker not in dev_spk], [u for u in utts if u.speaker in dev_spk]


def prepare_an4(corpus_dir: str | os.PathLike, data_dir: str | os.PathLike, wav_dir: str | os.PathLike | None = None,
                dev_utts: int = 100, seed: int = 0, raw_byteorder: str = "big",
                log: Callable[[str], None] = print) -> dict:
    root = find_root(corpus_dir)
    require("AN4", root, ["etc/an4_train.transcription", "etc/an4_test.transcription", "wav"], EXPECTED, HINT)
    wd = Path(wav_dir) if wav_dir else None
    train_all = read_split(root, "train", wd, raw_byteorder)
    test = read_split(root, "test", wd, raw_byteorder)
    _check_readable(train_all)
    train, dev = hold_out_speakers(train_all, dev_utts, seed)
    data = Path(data_dir)
    for name, utts in (("train", train), ("dev", dev), ("test", test)):
        write_datadir(data / name, utts, log=log)
    write_lm_text(data / "lm_text", read_text_values(data / "train"), read_text_values(data / "dev"), log=log)
    return {"train": "train", "dev": "dev", "test": ["test"]}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus-dir", required=True, help="the an4 folder (or the folder holding it)")
    p.add_argument("--data-dir", required=True, help="output root for train/dev/test and lm_text/")
    p.add_argument("--wav-dir", default=None, help="where .raw audio is converted to WAV (needed for .raw only)")
    p.add_argument("--dev-utts", type=int, default=100, help="hold out whole speakers until dev has this many")
    p.add_argument("--seed", type=int, default=0, help="seed for the held-out speakers")
    p.add_argument("--raw-byteorder", choices=["big", "little"], default="big", help="byte order of .raw files")


def run(a: argparse.Namespace) -> int:
    prepare_an4(a.corpus_dir, a.data_dir, a.wav_dir, a.dev_utts, a.seed, a.raw_byteorder)
    return 0


if __name__ == "__main__":  # python -m asr.importers.an4 = asr import-an4
    import sys

    from ..cli import main

    raise SystemExit(main(["import-an4", *sys.argv[1:]]))
