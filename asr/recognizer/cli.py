"""``asr transcribe FILE... [--list FILE] [--scp wav.scp]``: transcribe audio files with any model
package (PyTorch or ONNX) through the one recognizer.

Files are batched by length through the model, in ``--nj`` worker processes
(:mod:`asr.recognizer.batch`). Output, in input order, on stdout: ``FILE<TAB>text`` lines (the
default; ``FILE`` is the path as given, or the wav.scp id), JSON, SRT, WebVTT or Kaldi CTM with
``--format`` (:mod:`asr.recognizer.formats`; word times for all but text), or one short JSON object
per file (``--jsonl``: file, path, text, duration); or one file per input in ``--output-dir``
(``NAME.txt``, ``NAME.json``, ... by ``--format``: the audio file's name without its extension, or
the wav.scp id; written atomically). Every output goes through one writer, a
function that receives each file's :class:`~asr.recognizer.batch.FileResult`. A file that cannot
be read is reported on stderr, naming it, and the others are still transcribed; the exit status is
then 1.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from .batch import FileResult, Item

Writer = Callable[[FileResult], None]  # called once per transcribed file, in input order


def add_arguments(p) -> None:
    import argparse
    import textwrap

    from .. import pretrained
    from ..decode.hotwords import add_search_arguments
    from .formats import FORMATS

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "default model:\n" + textwrap.fill(pretrained.summary(), 100, initial_indent="  ",
                                                  subsequent_indent="  ")
    p.add_argument("--model", default=None,
                   help="model package dir; default: $ASR_MODEL, else the model shipped in the package "
                        "(asr/pretrained: see `asr transcribe --help` below and its model card)")
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx"),
                   help="auto: model.pt when the package has it, else model.onnx")
    p.add_argument("--device", default="cpu", help="cpu | cuda (PyTorch backend)")
    p.add_argument("--int8", action="store_true", help="ONNX backend: use model.int8.onnx")
    p.add_argument("--list", metavar="FILE", action="append", default=[],
                   help="a file listing audio paths, one per line (may be repeated)")
    p.add_argument("--scp", metavar="FILE", action="append", default=[],
                   help="a Kaldi wav.scp ('utt path' lines; no pipes): output is named by utt id (may be repeated)")
    p.add_argument("--nj", type=int, default=1, help="worker processes, each with its own model on 1 thread")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--output-dir", metavar="DIR", default=None,
                     help="write one NAME.txt (NAME.json, .srt, .vtt, .ctm by --format) per input file here")
    out.add_argument("--jsonl", action="store_true",
                     help="print one short JSON object per file (file, path, text, duration); --format text only "
                          "(--format json adds words, segments and N-best)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (it is off anyway when stderr is no terminal)")
    p.add_argument("--format", default="text", choices=FORMATS,
                   help="text: FILE<TAB>text; json: one object per file per line (text, words with times and "
                        "confidences, segments, nbest with --nbest); srt/vtt: subtitles; ctm: Kaldi CTM")
    p.add_argument("--max-line-chars", type=int, default=42, help="srt/vtt: longest subtitle line (words wrapped)")
    p.add_argument("--max-lines", type=int, default=2, help="srt/vtt: lines per subtitle")
    # --hotwords, --lexicon, --nbest (N best with their scores: with --format text one line each,
    # FILE rank total am lm text; json: 'nbest')
    add_search_arguments(p)
    p.add_argument("files", nargs="*", help="audio files")


def inputs(files: Sequence[str], lists: Sequence[str], scps: Sequence[str]) -> list[Item]:
    """The items of the command line: FILE arguments, then each --list, then each --scp."""
    from ..errors import ConfigError
    from .batch import read_list, read_scp

    items = [Item(f, f) for f in files]
    for f in lists:
        items += read_list(f)
    for f in scps:
        items += read_scp(f)
    if not items:
        raise ConfigError("no audio given: name files, or --list FILE, or --scp wav.scp")
    return items


def record_id(key: str, path: str) -> str:
    """An input's short name: the wav.scp id, or the audio file's name without its extension."""
    return key if key != path else Path(path).stem


def output_names(items: Sequence[Item]) -> list[str]:
    """``--output-dir`` file stems (:func:`record_id`); two inputs with the same name are refused
    (nothing is written)."""
    from ..errors import ConfigError

    names = [record_id(it.key, it.path).replace("/", "_") for it in items]
    first: dict[str, str] = {}
    clashes = []
    for it, n in zip(items, names):
        if n in first and first[n] != it.key:
            clashes.append(f"{first[n]} and {it.key} -> {n}")
        first.setdefault(n, it.key)
    if clashes:
        raise ConfigError("--output-dir: inputs with the same name would overwrite each other's output ("
                          + "; ".join(clashes[:5]) + "): list them in a wav.scp with unique ids (--scp)")
    return names


def json_line(r: FileResult) -> str:
    return json.dumps({"file": r.key, "path": r.path, "text": r.text, "duration": r.duration},
                      ensure_ascii=False) + "\n"


def stream_writer(render: Callable[[FileResult], str], out=None) -> Writer:
    """A writer printing ``render(result)`` for each file on ``out`` (stdout)."""

    def write(r: FileResult) -> None:
        stream = out or sys.stdout
        stream.write(render(r))
        stream.flush()

    return write


def dir_writer(folder: str, items: Sequence[Item], render: Callable[[FileResult], str],
               suffix: str = ".txt") -> Writer:
    """A writer of one file ``folder/NAME{suffix}`` per input (atomic writes)."""
    from ..atomic import atomic_write_text, check_output_dir

    names = dict(zip((it.key for it in items), output_names(items)))
    out = Path(folder)
    check_output_dir(out)
    out.mkdir(parents=True, exist_ok=True)

    def write(r: FileResult) -> None:
        atomic_write_text(out / f"{names[r.key]}{suffix}", render(r))

    return write


def make_writer(args, items: Sequence[Item]) -> Writer:
    """The writer of ``--output-dir`` / ``--jsonl`` / ``--format`` (stdout)."""
    from .formats import SUFFIXES, format_result

    fmt, nbest = args.format, args.nbest is not None

    def render(r: FileResult) -> str:
        name = record_id(r.key, r.path) if fmt == "ctm" else r.key  # CTM: a recording id
        return format_result(name, r.result, fmt, nbest=nbest, max_line_chars=args.max_line_chars,
                             max_lines=args.max_lines)

    if args.output_dir:
        plain = fmt == "text" and not nbest  # NAME.txt holds the text alone
        return dir_writer(args.output_dir, items, (lambda r: r.text + "\n") if plain else render, SUFFIXES[fmt])
    if args.jsonl:
        return stream_writer(json_line)
    return stream_writer(render)


def run(args) -> int:
    from tqdm import tqdm

    from ..api import default_model_dir, load_model
    from ..decode.hotwords import search_options
    from ..errors import ConfigError
    from .batch import transcribe_files
    from .formats import transcribe_options

    if args.nj < 1:
        raise ConfigError(f"--nj {args.nj}: need at least 1 worker")
    if args.nbest is not None and args.nbest < 1:
        raise ConfigError(f"--nbest {args.nbest}: must be >= 1")
    if args.max_line_chars < 1 or args.max_lines < 1:
        raise ConfigError(f"--max-line-chars {args.max_line_chars} --max-lines {args.max_lines}: must be >= 1")
    if args.jsonl and args.format != "text":
        raise ConfigError(f"--jsonl with --format {args.format}: --jsonl prints text rows; for JSON with words "
                          "use --format json alone")
    items = inputs(args.files, args.list, args.scp)
    model = Path(args.model) if args.model is not None else default_model_dir(args.backend)
    options = dict(device=args.device, backend=args.backend, int8=args.int8)
    options.update(search_options(args, model))
    write = make_writer(args, items)
    rec = load_model(model, **options)
    progress = not args.quiet and sys.stderr.isatty()
    failed = 0
    for r in transcribe_files(rec, items, nj=args.nj, options=options, progress=progress,
                              transcribe_options=transcribe_options(args.format, args.nbest)):
        if r.error is not None:
            tqdm.write(f"asr transcribe: {r.error}", file=sys.stderr)
            failed += 1
        else:
            write(r)
    if failed:
        tqdm.write(f"asr transcribe: {failed} of {len(items)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0
