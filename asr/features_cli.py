"""``asr extract-features``: dump features of a data dir (+ global CMVN stats).

    asr extract-features --data data/train --dump dump/train --conf conf/features/fbank.yaml \\
        [--cmvn-out data/train/cmvn.npz] [--nj 2] [--feat.n_mels 40 ...]

Resumable: utterances whose ``.npy`` already exists are skipped (and counted in the summary).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from .features import FeatureConfig, extract_features, load_feature_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="Kaldi-style data dir (wav.scp, utt2spk, ...)")
    parser.add_argument("--dump", required=True, help="folder for the per-utterance .npy features")
    parser.add_argument("--conf", default=None,
                        help="feature config YAML, e.g. conf/features/fbank.yaml (default: FeatureConfig())")
    parser.add_argument("--cmvn-out", default=None, help="write global CMVN stats (.npz) over all frames here")
    parser.add_argument("--nj", type=int, default=1, help="parallel worker processes (1 torch thread each)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = parser.add_argument_group("feature config overrides (win over --conf)")
    for f in dataclasses.fields(FeatureConfig):
        group.add_argument(f"--feat.{f.name}", dest=f"feat__{f.name}", default=None, metavar="VALUE",
                           help=f"override FeatureConfig.{f.name}")


def run(args: argparse.Namespace) -> int:
    overrides = {k[len("feat__"):]: v for k, v in vars(args).items() if k.startswith("feat__") and v is not None}
    cfg = load_feature_config(args.conf, overrides)
    t0 = time.perf_counter()
    summary = extract_features(args.data, args.dump, cfg, cmvn_out=args.cmvn_out, nj=args.nj,
                               progress=not args.no_progress)
    dt = time.perf_counter() - t0
    print(f"extract-features: {summary['utterances']} utterances ({summary['computed']} computed, "
          f"{summary['skipped']} already there and skipped), {summary['frames']} frames of dim {cfg.dim} "
          f"in {dt:.1f} s -> {summary['dump_dir']}"
          + (f"; CMVN stats -> {args.cmvn_out}" if args.cmvn_out else ""), file=sys.stderr)
    return 0
