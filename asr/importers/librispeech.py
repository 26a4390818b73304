"""LibriSpeech and mini-LibriSpeech -> Kaldi data dirs + LM text.

Layout (as the openslr.org tarballs unpack; ``--corpus-dir`` may be the ``LibriSpeech`` folder or
the folder holding it)::

    LibriSpeech/<subset>/<SPEAKER>/<CHAPTER>/<SPEAKER>-<CHAPTER>-<UTT>.flac
    LibriSpeech/<subset>/<SPEAKER>/<CHAPTER>/<SPEAKER>-<CHAPTER>.trans.txt   ("<UTT-ID> TRANSCRIPT" lines)

Subsets: train-clean-100, train-clean-360, train-other-500, dev-clean, dev-other, test-clean,
test-other; mini-LibriSpeech (openslr 31): train-clean-5, dev-clean-2.

Output under ``--data-dir``: ``train`` (the training subsets combined), ``dev`` (the dev subsets
combined), one dir per test subset (``test-clean`` -> ``test_clean``), ``lm_text/{train,dev}.txt``.
With ``--mini``: ``train`` = train-clean-5, and dev-clean-2 split by speaker into ``dev`` (half of
the speakers, for early stopping and LM-weight tuning) and ``test`` (the other half), since
mini-LibriSpeech has no test subset. Speaker = the LibriSpeech speaker id.

``python -m asr.importers.librispeech --corpus-dir /data/LibriSpeech --data-dir data [--mini]
[--train-sets train-clean-100,train-clean-360] [--lm-text librispeech-lm-norm.txt.gz]``
"""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Callable, Sequence

from .layout import CorpusLayoutError, layout_error, require
from .writer import Utt, read_text_values, write_datadir, write_lm_text

FULL_SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other",
                "test-clean", "test-other")
MINI_SUBSETS = ("train-clean-5", "dev-clean-2")
EXPECTED = """\
  <corpus_dir>/LibriSpeech/<subset>/<SPEAKER>/<CHAPTER>/<SPEAKER>-<CHAPTER>-<UTT>.flac
  <corpus_dir>/LibriSpeech/<subset>/<SPEAKER>/<CHAPTER>/<SPEAKER>-<CHAPTER>.trans.txt
  (subsets: train-clean-100, train-clean-360, train-other-500, dev-clean, dev-other, test-clean,
   test-other; mini-LibriSpeech: train-clean-5, dev-clean-2; --corpus_dir may also be the
   LibriSpeech folder itself)"""
HINT = "Download from https://www.openslr.org/12 (mini: https://www.openslr.org/31) and unpack the tarballs."
_UTT = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def find_root(corpus_dir: str | os.PathLike, subsets: Sequence[str]) -> Path:
    """The folder that holds the subset folders: ``corpus_dir`` or ``corpus_dir/LibriSpeech``."""
    d = Path(corpus_dir)
    known = (*subsets, *FULL_SUBSETS, *MINI_SUBSETS)
    for cand in (d, d / "LibriSpeech"):
        if cand.is_dir() and any((cand / s).is_dir() for s in known):
            return cand
    root = d / "LibriSpeech" if (d / "LibriSpeech").is_dir() else d
    require("LibriSpeech", root, list(subsets), EXPECTED, HINT)
    return root


def read_subset(subset_dir: Path) -> list[Utt]:
    """Every utterance of one subset; raises CorpusLayoutError naming missing/malformed files."""
    trans = sorted(subset_dir.glob("*/*/*.trans.txt"))
    if not trans:
        raise layout_error("a LibriSpeech subset", subset_dir,
                           ["<SPEAKER>/<CHAPTER>/<SPEAKER>-<CHAPTER>.trans.txt (no transcript file found)"],
                           EXPECTED, HINT)
    utts: list[Utt] = []
    missing: list[str] = []
    for t in trans:
        spk, chapter = t.parent.parent.name, t.parent.name
        for n, line in enumerate(t.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            m = _UTT.match(parts[0])
            if not m or m.group(1) != spk or m.group(2) != chapter or len(parts) < 2:
                raise CorpusLayoutError(
                    f"{t}:{n}: expected '<SPEAKER>-<CHAPTER>-<UTT> TRANSCRIPT' with speaker {spk} and "
                    f"chapter {chapter}, got {line[:80]!r}")
            flac = t.parent / f"{parts[0]}.flac"
            if not flac.is_file():
                missing.append(str(flac.relative_to(subset_dir)))
                continue
            utts.append(Utt(parts[0], str(flac.resolve()), parts[1], spk))
    if missing:
        raise layout_error("a complete LibriSpeech subset", subset_dir, missing, EXPECTED,
                           "Every line of a .trans.txt needs its .flac beside it: unpack the tarball again.")
    return utts


def split_by_speaker(utts: Sequence[Utt]) -> tuple[list[Utt], list[Utt]]:
    """Two halves by speaker (every other speaker in sorted order): no speaker in both."""
    spks = sorted({u.speaker for u in utts}, key=lambda s: (len(s), s))
    first = set(spks[0::2])
    return [u for u in utts if u.speaker in first], [u for u in utts if u.speaker not in first]


def prepare_librispeech(corpus_dir: str | os.PathLike, data_dir: str | os.PathLike, mini: bool = False,
                        train_sets: Sequence[str] = ("train-clean-100",), dev_sets: Sequence[str] = ("dev-clean",),
                        test_sets: Sequence[str] = ("test-clean", "test-other"),
                        lm_text: str | os.PathLike | None = None, log: Callable[[str], None] = print) -> dict:
    """Write the data dirs (see the module doc); returns ``{"train", "dev", "test": [names]}``."""
    if mini:
        train_sets, dev_sets, test_sets = ("train-clean-5",), ("dev-clean-2",), ()
    wanted = [*train_sets, *dev_sets, *test_sets]
    unknown = [s for s in wanted if s not in FULL_SUBSETS + MINI_SUBSETS]
    if unknown:
        known = ", ".join(FULL_SUBSETS + MINI_SUBSETS)
        raise CorpusLayoutError(f"unknown LibriSpeech subset(s) {unknown}; known: {known}")
    if lm_text is not None and not Path(lm_text).is_file():
        raise CorpusLayoutError(
            f"LM text {lm_text} not found (librispeech-lm-norm.txt[.gz] from https://www.openslr.org/11)")
    root = find_root(corpus_dir, wanted)
    hint = HINT
    if not mini and all((root / s).is_dir() for s in MINI_SUBSETS):
        hint = "This folder holds mini-LibriSpeech (train-clean-5, dev-clean-2): use --mini (run.sh --mini true)."
    require("LibriSpeech", root, wanted, EXPECTED, hint)
    read = {s: read_subset(root / s) for s in wanted}  # check every subset before writing anything
    data = Path(data_dir)
    train = [u for s in train_sets for u in read[s]]
    dev = [u for s in dev_sets for u in read[s]]
    write_datadir(data / "train", train, log=log)
    tests: dict[str, list[Utt]] = {}
    if mini:
        dev, tests["test"] = split_by_speaker(dev)
    else:
        for s in test_sets:
            tests[s.replace("-", "_")] = read[s]
    write_datadir(data / "dev", dev, log=log)
    for name, utts in tests.items():
        write_datadir(data / name, utts, log=log)
    held = {t for name in ("dev", *tests) for t in read_text_values(data / name)}
    write_lm_text(data / "lm_text", read_text_values(data / "train"), read_text_values(data / "dev"),
                  extra_text=lm_text, exclude=held, log=log)
    return {"train": "train", "dev": "dev", "test": list(tests)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus-dir", required=True, help="the LibriSpeech folder (or the folder holding it)")
    p.add_argument("--data-dir", required=True, help="output root for the data dirs and lm_text/")
    p.add_argument("--mini", action="store_true", help="mini-LibriSpeech: train-clean-5 + dev-clean-2")
    p.add_argument("--train-sets", default="train-clean-100", help="comma-separated training subsets")
    p.add_argument("--dev-sets", default="dev-clean", help="comma-separated dev subsets (combined)")
    p.add_argument("--test-sets", default="test-clean,test-other", help="comma-separated test subsets")
    p.add_argument("--lm-text", default=None, help="optional extra LM text, e.g. librispeech-lm-norm.txt.gz")


def run(a: argparse.Namespace) -> int:
    split = lambda s: tuple(x for x in s.replace(" ", ",").split(",") if x)  # noqa: E731
    sets = prepare_librispeech(a.corpus_dir, a.data_dir, a.mini, split(a.train_sets), split(a.dev_sets),
                               split(a.test_sets), a.lm_text)
    print(f"test sets: {' '.join(sets['test'])}")
    return 0


if __name__ == "__main__":  # python -m asr.importers.librispeech = asr import-librispeech
    import sys

    from ..cli import main

    raise SystemExit(main(["import-librispeech", *sys.argv[1:]]))
