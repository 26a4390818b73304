"""``asr <command>``: one subcommand per recipe stage, plus transcribe, export and live.

Each subcommand lives in the module that does the work; that module defines
``add_arguments(parser)`` and ``run(args) -> int | None``. Modules are imported only when their
command runs, so ``asr --help`` stays fast. ASRError is printed without a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import ASRError

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate-corpus": ("asr.synthesis.generate", "synthesise a TTS speech corpus (recipes/tts_en stage 0)"),
    "import-librispeech": ("asr.importers.librispeech", "LibriSpeech / mini-LibriSpeech -> data dirs + LM text"),
    "import-an4": ("asr.importers.an4", "CMU AN4 -> data dirs + LM text"),
    "import-commonvoice": ("asr.importers.commonvoice", "Common Voice (TSV + clips) -> data dirs + LM text"),
    "import-kaldi-datadir": ("asr.importers.kaldi_datadir", "existing Kaldi data dirs -> checked, normalised copies"),
    "import-audio-folder": ("asr.importers.audio_folder", "a folder of your recordings -> train/dev/test data dirs (recipes/adapt)"),
    "validate-data": ("asr.data.validate", "check a Kaldi-style data dir and list every problem"),
    "prepare-data": ("asr.data.prepare", "derive utt2dur/spk2utt, validate, write a data dir"),
    "make-tokens": ("asr.data.lang", "token set of a recipe: characters, or BPE trained on the training text"),
    "speed-perturb": ("asr.features.perturb", "Kaldi 3-way speed-perturbed copy of a data dir (sp0.9-/sp1.1- ids)"),
    "extract-features": ("asr.features.dump", "compute features (+ global CMVN stats) for a data dir"),
    "train": ("asr.train", "train a CTC acoustic model (torchrun for DDP)"),
    "average": ("asr.checkpoint", "average the best-N checkpoints of an experiment"),
    "decode": ("asr.decode.cli", "decode a data dir (greedy or beam + LM) into OUT/hyp"),
    "score": ("asr.score", "score OUT/hyp against a data dir's text with jiwer"),
    "package": ("asr.package", "write a self-contained model package folder"),
    "transcribe": ("asr.recognizer.cli", "transcribe audio files, a --list or a wav.scp (batched, --nj workers)"),
    "train-lm": ("asr.train_lm", "train the LSTM language model on a text corpus"),
    "tune-lm-weight": ("asr.decode.tune", "pick LM weight alpha and word bonus beta on dev"),
    "build-ngram": ("asr.ngram.build", "build a modified Kneser-Ney word n-gram LM (ARPA, or a KenLM binary) from text"),
    "build-kenlm": ("asr.ngram.kenlm_build", "compile KenLM's build_binary and query from its source release (g++)"),
    "export": ("asr.export", "export a model package to ONNX (+ int8) with a parity check"),
    "live": ("asr.runtime.live", "transcribe the microphone in real time"),
    "serve": ("asr.serve.cli", "HTTP + WebSocket transcription server with a browser page (ONNX packages)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="asr", description="BiLSTM-CTC speech recognition toolkit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.print_help()
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nasr: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    name = argv[0]
    module_name, help_ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
        cmd = argparse.ArgumentParser(prog=f"asr {name}", description=help_)
        module.add_arguments(cmd)
        args = cmd.parse_args(argv[1:])
        rc = module.run(args)
        return int(rc or 0)
    except ASRError as e:
        print(f"asr {name}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"asr {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
