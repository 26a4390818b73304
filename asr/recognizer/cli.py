"""``asr transcribe FILE... [--list FILE] [--scp wav.scp]``: transcribe audio files with any model
package (PyTorch or ONNX) through the one recognizer.

Files are batched by length through the model, in ``--nj`` worker processes
(:mod:`asr.recognizer.batch`). Output, in input order: ``FILE<TAB>text`` lines on stdout (the
default; ``FILE`` is the path as given, or the wav.scp id), one JSON object per line (``--jsonl``),
or one file per input in ``--output-dir`` (``NAME.txt``: the audio file's name without its
extension, or the wav.scp id; written atomically). Every output goes through one writer, a
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
    from ..decode.hotwords import add_search_arguments

    p.add_argument("--model", default=None, help="model package dir (default: $ASR_MODEL or the recipe's exp/model)")
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
    out.add_argument("--output-dir", metavar="DIR", default=None, help="write one NAME.txt per input file here")
    out.add_argument("--jsonl", action="store_true", help="print one JSON object per file (file, path, text, duration)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (it is off anyway when stderr is no terminal)")
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


def output_names(items: Sequence[Item]) -> list[str]:
    """``--output-dir`` file stems: the wav.scp id, or the audio file's name without its extension;
    two inputs with the same name are refused (nothing is written)."""
    from ..errors import ConfigError

    names = [(it.key if it.key != it.path else Path(it.path).stem).replace("/", "_") for it in items]
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


def text_line(r: FileResult) -> str:
    return f"{r.key}\t{r.text}\n"


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
    if args.output_dir:
        return dir_writer(args.output_dir, items, lambda r: r.text + "\n")
    return stream_writer(json_line if args.jsonl else text_line)


def run(args) -> int:
    from tqdm import tqdm

    from ..api import default_model_dir, load_model
    from ..decode.hotwords import search_options
    from ..errors import ConfigError
    from .batch import transcribe_files

    if args.nj < 1:
        raise ConfigError(f"--nj {args.nj}: need at least 1 worker")
    items = inputs(args.files, args.list, args.scp)
    model = Path(args.model) if args.model is not None else default_model_dir()
    options = dict(device=args.device, backend=args.backend, int8=args.int8)
    options.update(search_options(args, model))
    write = make_writer(args, items)
    rec = load_model(model, **options)
    progress = not args.quiet and sys.stderr.isatty()
    failed = 0
    for r in transcribe_files(rec, items, nj=args.nj, options=options, progress=progress):
        if r.error is not None:
            tqdm.write(f"asr transcribe: {r.error}", file=sys.stderr)
            failed += 1
        else:
            write(r)
    if failed:
        tqdm.write(f"asr transcribe: {failed} of {len(items)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0
