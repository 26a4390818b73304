"""Bring your own Kaldi data dirs: copy train/dev/test dirs into a recipe's ``data/``.

Each source dir needs ``wav.scp`` (``<id> <audio file>``; Kaldi pipe commands are refused with a
conversion hint), ``text`` and optionally ``utt2spk`` (``<utt> <utt>`` when absent) and ``segments``.
Relative audio paths are resolved against ``--base-dir`` (the folder the dirs were made in,
default: the current directory) first, then the data dir itself, and written back absolute.
Transcripts are normalised with ``asr.text.normalize_text`` unless ``--no-normalize``.

Output: ``train``, ``dev``, one dir per test dir (``test`` for one; ``test_<name>`` for several),
``test_sets`` (their names, one line) and ``lm_text/{train,dev}.txt`` (train transcripts + the
optional ``--lm-text`` file, minus dev/test sentences).

``python -m asr.importers.kaldi_datadir --train /k/data/train --dev /k/data/dev --test /k/data/eval
--data-dir data [--lm-text extra.txt]``
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Callable, Sequence

from ..atomic import atomic_write_text
from ..data.datadir import PIPE_HINT, is_pipe, read_kaldi_map
from .layout import CorpusLayoutError
from .writer import DERIVED, read_text_values, write_lm_text

EXPECTED = """\
  <dir>/wav.scp   "<utt-or-recording-id> <audio file>" lines (wav/flac/mp3/ogg/sph with PCM, any rate)
  <dir>/text      "<utt-id> <transcript>" lines
  <dir>/utt2spk   optional "<utt-id> <speaker-id>" lines
  <dir>/segments  optional "<utt-id> <recording-id> <start> <end>" lines"""


def import_datadir(src: str | os.PathLike, dst: str | os.PathLike, normalize: bool = True,
                   base_dir: str | os.PathLike | None = None, log: Callable[[str], None] = print) -> int:
    """Copy one data dir (see the module doc); returns the number of utterances."""
    from ..text import normalize_text

    src, dst = Path(src), Path(dst)
    missing = [f for f in ("wav.scp", "text") if not (src / f).is_file()]
    if not src.is_dir() or missing:
        what = "the folder itself" if not src.is_dir() else ", ".join(missing)
        raise CorpusLayoutError(f"{src} is not a Kaldi data dir: missing {what}.\nExpected layout:\n{EXPECTED}")
    base = Path(base_dir) if base_dir else Path.cwd()
    wav = read_kaldi_map(src / "wav.scp")
    problems, out_wav = [], {}
    for key, value in wav.items():
        if is_pipe(value):
            problems.append(f"wav.scp: {key}: '{value[:60]}' is a pipe command")
            continue
        p = Path(value).expanduser()
        cands = [p] if p.is_absolute() else [base / p, src / p]
        found = next((c for c in cands if c.is_file()), None)
        if found is None:
            problems.append(f"wav.scp: {key}: audio file {value} not found (looked in {', '.join(map(str, cands))})")
            continue
        out_wav[key] = str(found.resolve())
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        hint = PIPE_HINT if any("pipe command" in p for p in problems) else \
            "relative paths are resolved against --base_dir (the folder the data dir was made in), then the data dir"
        raise CorpusLayoutError(f"{src}: {len(problems)} problem(s) in wav.scp:\n  {shown}\n{hint}")
    text = read_kaldi_map(src / "text")
    if normalize:
        text = {u: normalize_text(t) for u, t in text.items()}
    empty = [u for u, t in text.items() if not t]
    text = {u: t for u, t in text.items() if t}
    u2s = read_kaldi_map(src / "utt2spk") if (src / "utt2spk").is_file() else {u: u for u in text}
    dst.mkdir(parents=True, exist_ok=True)
    from ..data.datadir import kaldi_map_text

    files = {"wav.scp": out_wav, "text": text, "utt2spk": {u: s for u, s in u2s.items() if u in text}}
    if (src / "segments").is_file():
        files["segments"] = {u: s for u, s in read_kaldi_map(src / "segments").items() if u in text}
    elif (dst / "segments").exists():
        (dst / "segments").unlink()
    changed = False
    for name, mapping in files.items():
        content = kaldi_map_text(mapping)
        if not ((dst / name).is_file() and (dst / name).read_text(encoding="utf-8") == content):
            atomic_write_text(dst / name, content)
            changed = True
    if changed:
        for name in DERIVED:
            if (dst / name).exists():
                (dst / name).unlink()
    log(f"{src} -> {dst}: {len(text)} utterances" + (f", {len(empty)} dropped (empty transcript)" if empty else "")
        + ("" if (src / "utt2spk").is_file() else " (no utt2spk: speaker = utterance)"))
    return len(text)


def test_names(test_dirs: Sequence[str | os.PathLike]) -> list[str]:
    if len(test_dirs) == 1:
        return ["test"]
    names = [f"test_{re.sub(r'[^A-Za-z0-9_.-]', '_', Path(d).name)}" for d in test_dirs]
    if len(set(names)) != len(names):
        names = [f"test{i + 1}" for i in range(len(test_dirs))]
    return names


def prepare_kaldi_datadirs(train: str | os.PathLike, dev: str | os.PathLike, tests: Sequence[str | os.PathLike],
                           data_dir: str | os.PathLike, lm_text: str | os.PathLike | None = None,
                           normalize: bool = True, base_dir: str | os.PathLike | None = None,
                           log: Callable[[str], None] = print) -> dict:
    if not tests:
        raise CorpusLayoutError("at least one test data dir is needed (--test_dirs)")
    if lm_text is not None and not Path(lm_text).is_file():
        raise CorpusLayoutError(f"LM text {lm_text} not found")
    data = Path(data_dir)
    names = test_names(tests)
    for s, name in [(train, "train"), (dev, "dev"), *zip(tests, names)]:
        import_datadir(s, data / name, normalize, base_dir, log)
    atomic_write_text(data / "test_sets", " ".join(names) + "\n")
    held = {t for n in ("dev", *names) for t in read_text_values(data / n)}
    write_lm_text(data / "lm_text", read_text_values(data / "train"), read_text_values(data / "dev"),
                  extra_text=lm_text, exclude=held, log=log)
    return {"train": "train", "dev": "dev", "test": names}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, help="training data dir")
    p.add_argument("--dev", required=True, help="dev data dir (early stopping, LM weight tuning)")
    p.add_argument("--test", required=True, nargs="+", help="test data dir(s)")
    p.add_argument("--data-dir", required=True, help="output root")
    p.add_argument("--lm-text", default=None, help="optional extra LM text (one sentence per line, .gz ok)")
    p.add_argument("--base-dir", default=None, help="folder relative wav.scp paths are relative to (default: cwd)")
    p.add_argument("--no-normalize", action="store_true", help="keep transcripts as they are")


def run(a: argparse.Namespace) -> int:
    tests = [t for x in a.test for t in x.replace(",", " ").split()]
    prepare_kaldi_datadirs(a.train, a.dev, tests, a.data_dir, a.lm_text, not a.no_normalize, a.base_dir)
    return 0


if __name__ == "__main__":  # python -m asr.importers.kaldi_datadir = asr import-kaldi-datadir
    import sys

    from ..cli import main

    raise SystemExit(main(["import-kaldi-datadir", *sys.argv[1:]]))
