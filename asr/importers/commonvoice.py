"""Mozilla Common Voice (one locale folder) -> Kaldi data dirs + LM text.

Layout (a ``cv-corpus-*/<locale>/`` folder as the release unpacks)::

    <locale>/train.tsv  dev.tsv  test.tsv  validated.tsv   tab-separated, header row with at least
                                                            client_id, path, sentence
    <locale>/clips/<path>                                   common_voice_<locale>_<n>.mp3

Audio: the clips are read by soundfile (libsndfile >= 1.1 reads MP3; any other format it reads,
e.g. .ogg/.flac/.wav, works too) and resampled from 48/32 kHz to the model rate when features are
computed. Transcripts are normalised with ``asr.text.normalize_text`` (lower-case a-z and
apostrophes, accents stripped): this suits English and other Latin-script locales; clips whose
sentence is empty after normalisation are dropped (and counted).

Speaker = the first 16 hex digits of ``client_id``; utterance id ``<speaker>-<clip name>``.
``--train-tsv validated`` trains on validated.tsv minus every clip, sentence and speaker of dev/test
(more data than train.tsv). Output: ``train``, ``dev``, ``test``, ``lm_text/{train,dev}.txt``.

``python -m asr.importers.commonvoice --corpus-dir /data/cv-corpus-17.0/en --data-dir data``
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from .layout import CorpusLayoutError, layout_error, require
from .writer import Utt, read_text_values, write_datadir, write_lm_text

EXPECTED = """\
  <corpus_dir>/train.tsv, dev.tsv, test.tsv (validated.tsv for --train_tsv validated):
      tab-separated with a header row holding client_id, path, sentence
  <corpus_dir>/clips/<path>   (the mp3 files named in the 'path' column)
  (<corpus_dir> is the locale folder of a release, e.g. cv-corpus-17.0-2024-03-15/en)"""
HINT = "Download a Common Voice release from https://commonvoice.mozilla.org/datasets and unpack it."
COLUMNS = ("client_id", "path", "sentence")


def read_tsv(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CorpusLayoutError(f"{path}: header row lacks column(s) {missing}; expected a Common Voice TSV "
                                    f"with {', '.join(COLUMNS)} (got {reader.fieldnames})")
        return [row for row in reader if row.get("path")]


def speaker_of(client_id: str) -> str:
    return (client_id or "unknown")[:16]


def to_utts(root: Path, rows: Sequence[dict[str, str]], tsv: str) -> list[Utt]:
    utts, missing, seen = [], [], set()
    for row in rows:
        clip = root / "clips" / row["path"]
        if not clip.is_file():
            missing.append(f"clips/{row['path']} (listed in {tsv})")
            continue
        spk = speaker_of(row["client_id"])
        uid = f"{spk}-{Path(row['path']).stem}"
        if uid in seen:
            continue
        seen.add(uid)
        utts.append(Utt(uid, str(clip.resolve()), row.get("sentence") or "", spk))
    if missing:
        raise layout_error("Common Voice (clips)", root, missing, EXPECTED,
                           f"{len(missing)} clip(s) listed in the TSV are not in clips/: unpack the release again.")
    return utts


def prepare_commonvoice(corpus_dir: str | os.PathLike, data_dir: str | os.PathLike, train_tsv: str = "train",
                        log: Callable[[str], None] = print) -> dict:
    root = Path(corpus_dir)
    if train_tsv not in ("train", "validated"):
        raise CorpusLayoutError(f"--train-tsv must be train or validated, got {train_tsv!r}")
    require("a Common Voice locale folder", root, [f"{train_tsv}.tsv", "dev.tsv", "test.tsv", "clips"], EXPECTED, HINT)
    rows = {s: read_tsv(root / f"{s}.tsv") for s in ("dev", "test", train_tsv)}
    train_rows = rows[train_tsv]
    if train_tsv == "validated":
        held_paths = {r["path"] for s in ("dev", "test") for r in rows[s]}
        held_spk = {r["client_id"] for s in ("dev", "test") for r in rows[s]}
        held_sent = {r["sentence"] for s in ("dev", "test") for r in rows[s]}
        n0 = len(train_rows)
        train_rows = [r for r in train_rows if r["path"] not in held_paths and r["client_id"] not in held_spk
                      and r["sentence"] not in held_sent]
        log(f"validated.tsv: {n0} clips, {len(train_rows)} left after removing dev/test clips, speakers, sentences")
    data = Path(data_dir)
    sets = {"train": to_utts(root, train_rows, f"{train_tsv}.tsv"), "dev": to_utts(root, rows["dev"], "dev.tsv"),
            "test": to_utts(root, rows["test"], "test.tsv")}
    for name, utts in sets.items():
        st = write_datadir(data / name, utts, log=log)
        if utts and st["dropped_empty"] > len(utts) // 2:
            raise CorpusLayoutError(
                f"{name}: {st['dropped_empty']} of {len(utts)} sentences are empty after normalisation to a-z and "
                "apostrophes: this recipe's character set covers English/Latin-script locales only")
    write_lm_text(data / "lm_text", read_text_values(data / "train"), read_text_values(data / "dev"), log=log)
    return {"train": "train", "dev": "dev", "test": ["test"]}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus-dir", required=True, help="the locale folder holding clips/ and the TSVs")
    p.add_argument("--data-dir", required=True, help="output root for train/dev/test and lm_text/")
    p.add_argument("--train-tsv", default="train", choices=["train", "validated"],
                   help="train.tsv, or validated.tsv minus dev/test clips, speakers and sentences")


def run(a: argparse.Namespace) -> int:
    prepare_commonvoice(a.corpus_dir, a.data_dir, a.train_tsv)
    return 0


if __name__ == "__main__":  # python -m asr.importers.commonvoice = asr import-commonvoice
    import sys

    from ..cli import main

    raise SystemExit(main(["import-commonvoice", *sys.argv[1:]]))
