"""``asr transcribe FILE...``: print ``FILE<TAB>text`` for each audio file, with any model package
(PyTorch or ONNX) through the one recognizer."""
from __future__ import annotations

import sys


def add_arguments(p) -> None:
    import argparse
    import textwrap

    from .. import pretrained

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
    p.add_argument("files", nargs="+", help="audio files")


def run(args) -> int:
    from ..api import load_model
    from ..errors import AudioError

    m = load_model(args.model, device=args.device, backend=args.backend, int8=args.int8)
    rc = 0
    for f in args.files:
        try:
            print(f"{f}\t{m.transcribe(f)}", flush=True)
        except AudioError as e:
            print(f"asr transcribe: {e}", file=sys.stderr)
            rc = 1
    return rc
