"""``asr prepare-data DIR [--tokens tokens.txt]``: finish a data dir whose wav.scp, text (already
normalised) and utt2spk exist: sort every file, write ``utt2dur`` (from the audio headers) and
``spk2utt``, then validate. Idempotent: a complete utt2dur is kept (and it says so); files whose
content would not change are not rewritten.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable

from ..atomic import clean_stale_temps
from ..errors import DataDirError
from .datadir import DataDir, format_problems, parse_datadir
from .validate import load_tokens, summary, validate_datadir


def prepare_datadir(
    path: str | os.PathLike,
    tokenizer=None,
    *,
    require_text: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> DataDir:
    """Sort, derive utt2dur + spk2utt, validate. Raises DataDirError listing every problem."""
    path = Path(path)
    clean_stale_temps(path)
    pd = parse_datadir(path, require_text=require_text)
    if pd.problems:
        # structural problems: report them together with everything else the validator finds
        problems = validate_datadir(path, tokenizer, require_text=require_text)
        raise DataDirError(format_problems(path, problems or pd.problems))
    dd = DataDir._from_parsed(pd)
    utts = set(dd.utt_ids)
    if dd.utt2dur is not None and set(dd.utt2dur) == utts:
        log(f"{path}: utt2dur already complete ({len(utts)} utterances), skipping")
    else:
        # drop stale entries, keep the ones that are still valid, compute the rest
        dd.utt2dur = {u: d for u, d in (dd.utt2dur or {}).items() if u in utts}
        n_missing = len(utts) - len(dd.utt2dur)
        log(f"{path}: computing utt2dur for {n_missing} utterance(s)")
        dd.utt2dur = dd.durations(progress=progress)
    dd = dd.save(path)  # sorted files + spk2utt (unchanged files untouched)
    problems = validate_datadir(path, tokenizer, require_text=require_text)
    if problems:
        raise DataDirError(format_problems(path, problems))
    log(f"{path}: OK: {summary(dd)}")
    return dd


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", help="data dir holding wav.scp, text and utt2spk")
    p.add_argument("--tokens", help="tokens.txt: also check that every transcript can be encoded")
    p.add_argument("--no-text", action="store_true", help="the dir has no transcripts (audio to decode)")


def run(args: argparse.Namespace) -> int:
    prepare_datadir(args.data_dir, load_tokens(args.tokens), require_text=not args.no_text)
    return 0
