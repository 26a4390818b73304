"""Validate a Kaldi-style data dir, reporting every problem at once.

``asr validate-data DIR [--tokens tokens.txt] [--check-audio] [--no-text]`` prints one line per
problem (``file:line: utt 'id': what is wrong; how to fix it``) and exits 1, or prints a one-line
OK summary. Checks: required files, malformed/blank/duplicate lines, sorting, empty transcripts,
characters the token set cannot encode, id sets that differ between files, segments naming unknown
recordings, spk2utt disagreeing with utt2spk, missing audio files and pipe entries; with
``--check-audio`` also that every audio file decodes (no NaN/Inf, not empty) and that segments and
utt2dur fit the audio.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import AudioError, DataDirError, TextError
from .datadir import (
    FEATS_SCP,
    SEGMENTS,
    SPK2UTT,
    TEXT,
    UTT2DUR,
    UTT2NUM_FRAMES,
    UTT2SPK,
    WAV_SCP,
    DataDir,
    ParsedDataDir,
    format_problems,
    is_pipe,
    parse_datadir,
)

#: Slack (seconds) when comparing segment ends / utt2dur with the audio length.
DURATION_TOLERANCE = 0.05


def _fix_sort(path: Path, fname: str) -> str:
    return f"sort it (`LC_ALL=C sort -o {fname} {fname}`) or run `asr prepare-data {path}`"


def _check_sorted(pd: ParsedDataDir, P: list[str]) -> None:
    for fname, entries in pd.files.items():
        prev = None
        for key, (ln, _) in entries.items():
            if prev is not None and key < prev:
                P.append(f"{fname}:{ln}: not sorted: '{key}' comes after '{prev}'; {_fix_sort(pd.path, fname)}")
                break
            prev = key


def _check_ids(pd: ParsedDataDir, P: list[str]) -> list[str]:
    """Cross-file id checks; returns the utterance ids."""
    seg_mode = SEGMENTS in pd.files
    src = SEGMENTS if seg_mode else WAV_SCP
    utts = pd.files.get(src, {})
    if seg_mode and WAV_SCP in pd.files:
        wav = pd.files[WAV_SCP]
        for u, (ln, value) in pd.files[SEGMENTS].items():
            rec = value.split()[0]
            if rec not in wav:
                P.append(f"{SEGMENTS}:{ln}: utt '{u}': recording '{rec}' is not in {WAV_SCP}")
    if src not in pd.files:
        return []
    for fname in (TEXT, UTT2SPK, UTT2DUR, FEATS_SCP, UTT2NUM_FRAMES):
        if fname not in pd.files:
            continue
        other = pd.files[fname]
        for u, (ln, _) in utts.items():
            if u not in other:
                P.append(f"{src}:{ln}: utt '{u}' has no line in {fname}; add it or remove the utterance")
        for u, (ln, _) in other.items():
            if u not in utts:
                P.append(f"{fname}:{ln}: utt '{u}' is not in {src}; add it there or delete this line")
    return list(utts)


def _check_spk2utt(pd: ParsedDataDir, P: list[str]) -> None:
    if SPK2UTT not in pd.files or UTT2SPK not in pd.files:
        return
    expected: dict[str, list[str]] = {}
    for u, (_, spk) in pd.files[UTT2SPK].items():
        expected.setdefault(spk.split()[0] if spk.split() else spk, []).append(u)
    fix = f"delete spk2utt and run `asr prepare-data {pd.path}` to regenerate it"
    for spk, (ln, value) in pd.files[SPK2UTT].items():
        got = sorted(value.split())
        want = sorted(expected.get(spk, []))
        if got != want:
            P.append(
                f"{SPK2UTT}:{ln}: speaker '{spk}' lists utts {got[:5]}{'...' if len(got) > 5 else ''} but utt2spk "
                f"gives {want[:5]}{'...' if len(want) > 5 else ''}; {fix}"
            )
    for spk in expected:
        if spk not in pd.files[SPK2UTT]:
            P.append(f"{SPK2UTT}: speaker '{spk}' (from utt2spk) is missing; {fix}")


def _check_text(pd: ParsedDataDir, P: list[str], tokenizer) -> None:
    for u, (ln, value) in pd.files.get(TEXT, {}).items():
        if not value.strip():
            P.append(f"{TEXT}:{ln}: utt '{u}': empty transcript; give its transcript or remove the utterance")
            continue
        if tokenizer is None:
            continue
        try:
            tokenizer.encode(value)
        except TextError as e:
            P.append(f"{TEXT}:{ln}: utt '{u}': {e}")


def _check_audio_files(pd: ParsedDataDir, P: list[str], deep: bool) -> None:
    from ..audio import audio_info, iter_audio_blocks
    from .datadir import resolve_audio_path

    wav = pd.files.get(WAV_SCP, {})
    seg_mode = SEGMENTS in pd.files
    rec_utts: dict[str, list[str]] = {}
    if seg_mode:
        for u, (_, value) in pd.files[SEGMENTS].items():
            rec_utts.setdefault(value.split()[0], []).append(u)
    rec_dur: dict[str, float] = {}
    for key, (ln, value) in wav.items():
        if is_pipe(value):
            continue  # already reported by the parser
        who = f"recording '{key}'" if seg_mode else f"utt '{key}'"
        if seg_mode:
            used = rec_utts.get(key, [])
            who += f" (utts {', '.join(used[:3])}{'...' if len(used) > 3 else ''})" if used else ""
        p = resolve_audio_path(value, pd.path)
        if not p.exists():
            P.append(
                f"{WAV_SCP}:{ln}: {who}: audio file not found: {value} (looked in {Path.cwd()} and {pd.path}); "
                "fix the path or remove the entry"
            )
            continue
        if p.is_dir():
            P.append(f"{WAV_SCP}:{ln}: {who}: {value} is a directory, not an audio file")
            continue
        if not deep:
            continue
        try:
            info = audio_info(p)
            # decode everything, block by block (bounded memory for hour-long recordings):
            # catches corrupt data, empty files, NaN/Inf
            for _ in iter_audio_blocks(p, None):
                pass
            rec_dur[key] = info.duration
        except AudioError as e:
            P.append(f"{WAV_SCP}:{ln}: {who}: {e}")
    for u, (ln, value) in pd.files.get(FEATS_SCP, {}).items():
        if not resolve_audio_path(value, pd.path).is_file():
            P.append(
                f"{FEATS_SCP}:{ln}: utt '{u}': feature file not found: {value}; rerun `asr extract-features` "
                "(or delete feats.scp to use the audio)"
            )
    if not deep:
        return
    if seg_mode and pd.segments is not None:
        for u, seg in pd.segments.items():
            if seg.recording not in rec_dur:
                continue
            dur = rec_dur[seg.recording]
            ln = pd.line(SEGMENTS, u)
            if seg.start >= dur or (seg.end >= 0 and seg.end > dur + DURATION_TOLERANCE):
                P.append(
                    f"{SEGMENTS}:{ln}: utt '{u}': {seg.start:g}-{seg.end:g} s lies outside recording "
                    f"'{seg.recording}' ({dur:.3f} s long); fix the segment times"
                )
    if pd.utt2dur is not None:
        for u, d in pd.utt2dur.items():
            if seg_mode:
                if pd.segments is None or u not in pd.segments or pd.segments[u].recording not in rec_dur:
                    continue
                seg = pd.segments[u]
                actual = (seg.end if seg.end >= 0 else rec_dur[seg.recording]) - seg.start
            else:
                if u not in rec_dur:
                    continue
                actual = rec_dur[u]
            if abs(actual - d) > DURATION_TOLERANCE:
                P.append(
                    f"{UTT2DUR}:{pd.line(UTT2DUR, u)}: utt '{u}': says {d:g} s but the audio is {actual:.3f} s; "
                    f"delete utt2dur and run `asr prepare-data {pd.path}`"
                )


def _validate(path, tokenizer=None, *, check_audio: bool = False, require_text: bool = True):
    pd = parse_datadir(path, require_text=require_text)
    P = pd.problems
    if not Path(path).is_dir():
        return pd, P
    _check_sorted(pd, P)
    _check_ids(pd, P)
    _check_spk2utt(pd, P)
    _check_text(pd, P, tokenizer)
    _check_audio_files(pd, P, deep=check_audio)
    return pd, P


def validate_datadir(
    path: str | os.PathLike, tokenizer=None, *, check_audio: bool = False, require_text: bool = True
) -> list[str]:
    """Every problem of the data dir at ``path``, one string each (empty list: valid).

    ``tokenizer``: anything with ``encode(text)`` raising TextError for text it cannot encode
    (None skips the check). ``check_audio`` decodes every audio file. ``require_text=False``
    accepts a dir without ``text`` (audio to transcribe).
    """
    return _validate(path, tokenizer, check_audio=check_audio, require_text=require_text)[1]


def check_datadir(
    path: str | os.PathLike, tokenizer=None, *, check_audio: bool = False, require_text: bool = True
) -> DataDir:
    """Load a data dir after validating it; raises DataDirError listing every problem."""
    pd, problems = _validate(path, tokenizer, check_audio=check_audio, require_text=require_text)
    if problems:
        raise DataDirError(format_problems(path, problems))
    return DataDir._from_parsed(pd)


def summary(dd: DataDir) -> str:
    n_spk = len(set(dd.utt2spk.values()))
    s = f"{len(dd)} utterances, {n_spk} speakers"
    if dd.utt2dur is not None:
        s += f", {sum(dd.utt2dur.values()) / 3600:.2f} hours"
    return s


def load_tokens(path: str | None):
    if not path:
        return None
    from ..text import load_tokenizer

    return load_tokenizer(path)


# ---- CLI ----------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", help="Kaldi-style data dir (wav.scp, text, utt2spk, ...)")
    p.add_argument("--tokens", help="tokens.txt: also check that every transcript can be encoded")
    p.add_argument("--check-audio", action="store_true", help="decode every audio file (slow)")
    p.add_argument("--no-text", action="store_true", help="the dir has no transcripts (audio to decode)")


def run(args: argparse.Namespace) -> int:
    tokenizer = load_tokens(args.tokens)
    pd, problems = _validate(args.data_dir, tokenizer, check_audio=args.check_audio, require_text=not args.no_text)
    if problems:
        for p in problems:
            print(f"{args.data_dir}: {p}")
        n = len(problems)
        print(f"asr validate-data: {args.data_dir}: {n} problem{'s' if n != 1 else ''}")
        return 1
    print(f"{args.data_dir}: OK: {summary(DataDir._from_parsed(pd))}")
    return 0
