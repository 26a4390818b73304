"""``asr transcribe FILE...``: print each audio file's transcript (``FILE<TAB>text`` by default; JSON,
SRT, WebVTT or Kaldi CTM with ``--format``, see :mod:`asr.recognizer.formats`), with any model
package (PyTorch or ONNX) through the one recognizer."""
from __future__ import annotations

import sys


def add_arguments(p) -> None:
    import argparse
    import textwrap

    from .. import pretrained
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
    p.add_argument("--format", default="text", choices=FORMATS,
                   help="text: FILE<TAB>text; json: one object per file per line (text, words with times and "
                        "confidences, segments, nbest with --nbest); srt/vtt: subtitles; ctm: Kaldi CTM")
    p.add_argument("--nbest", type=int, default=None,
                   help="N best hypotheses with their total, acoustic and LM scores (beam search; text: one line "
                        "each, FILE rank total am lm text; json: 'nbest')")
    p.add_argument("--max-line-chars", type=int, default=42, help="srt/vtt: longest subtitle line (words wrapped)")
    p.add_argument("--max-lines", type=int, default=2, help="srt/vtt: lines per subtitle")
    p.add_argument("files", nargs="+", help="audio files")


def run(args) -> int:
    from pathlib import Path

    from ..api import load_model
    from ..errors import AudioError, ConfigError
    from .formats import format_result, transcribe_options

    if args.nbest is not None and args.nbest < 1:
        raise ConfigError(f"--nbest {args.nbest}: must be >= 1")
    if args.max_line_chars < 1 or args.max_lines < 1:
        raise ConfigError(f"--max-line-chars {args.max_line_chars} --max-lines {args.max_lines}: must be >= 1")
    m = load_model(args.model, device=args.device, backend=args.backend, int8=args.int8)
    opts = transcribe_options(args.format, args.nbest)
    rc = 0
    for f in args.files:
        try:
            result = m.transcribe(f, **opts)
        except AudioError as e:
            print(f"asr transcribe: {e}", file=sys.stderr)
            rc = 1
            continue
        name = Path(f).stem if args.format == "ctm" else f
        sys.stdout.write(format_result(name, result, args.format, nbest=args.nbest is not None,
                                       max_line_chars=args.max_line_chars, max_lines=args.max_lines))
        sys.stdout.flush()
    return rc
