"""Feature dump of a data dir (``asr extract-features``): one ``.npy`` per utterance + global CMVN stats.

    asr extract-features --data data/train --dump dump/train --conf conf/features/fbank.yaml \\
        [--cmvn-out data/train/cmvn.npz] [--nj 2] [--feat.n_mels 40 ...]
    asr extract-features --data data/train --stats-only --cmvn-out data/train/cmvn.npz ...

``--stats-only`` (for ``train.on_the_fly``, corpora too big to dump): the features are computed for
the CMVN stats, ``utt2num_frames`` and ``feats.yaml`` only; no ``.npy`` and no ``feats.scp``.

Resumable: utterances whose ``.npy`` already exists are skipped (and counted in the summary).
``nj`` > 1 runs worker processes with one torch thread each. torch is imported by the workers, so
this module (and :func:`utt_file_name`) loads without it.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import config as config_mod
from ..atomic import atomic_save, clean_stale_temps
from ..data.datadir import DataDir, write_kaldi_map
from ..errors import ASRError, AudioError, ConfigError, DataDirError
from .cmvn import CMVNAccumulator
from .config import FeatureConfig, load_feature_config


def utt_file_name(utt: str) -> str:
    """Utterance id -> file name (path separators and leading dots escaped)."""
    name = utt.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    return "%2E" + name[1:] if name.startswith(".") else name


_WORKER: dict[str, Any] = {}


def _worker_init(data_dir: str, cfg_dict: dict, dump_dir: str | None, want_stats: bool, threads: int | None) -> None:
    import torch

    from .extract import FeatureExtractor

    if threads is not None:
        torch.set_num_threads(threads)
    cfg = FeatureConfig(**cfg_dict)
    _WORKER.update(dd=DataDir.load(data_dir), cfg=cfg, extractor=FeatureExtractor(cfg).eval(),
                   dump=None if dump_dir is None else Path(dump_dir), stats=want_stats)


def _load_existing(path: Path, dim: int) -> np.ndarray | None:
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if arr.ndim != 2 or arr.shape[1] != dim or arr.dtype != np.float32 or not np.isfinite(arr).all():
        return None  # damaged: computed again
    return arr


def _process(utt: str) -> tuple:
    """-> (utt, status, num_frames, sum, sumsq, error) with status computed/skipped/error."""
    w = _WORKER
    cfg: FeatureConfig = w["cfg"]
    path = None if w["dump"] is None else w["dump"] / f"{utt_file_name(utt)}.npy"
    feats = _load_existing(path, cfg.dim) if path is not None and path.is_file() else None
    status = "skipped"
    if feats is None:
        try:
            audio = w["dd"].audio(utt, sample_rate=cfg.sample_rate)
        except ASRError as e:
            return utt, "error", 0, None, None, f"{utt}: {e}"
        feats = w["extractor"].compute(audio)
        if feats.shape[0] == 0:
            return utt, "error", 0, None, None, (
                f"{utt}: {len(audio)} samples is shorter than one {cfg.win_length}-sample window")
        if path is not None:
            atomic_save(path, lambda f: np.save(f, feats))
        status = "computed"
    s = ss = None
    if w["stats"]:
        f64 = np.asarray(feats, dtype=np.float64)
        s, ss = f64.sum(0), (f64 * f64).sum(0)
    return utt, status, int(feats.shape[0]), s, ss, None


def _save_config_if_changed(cfg: FeatureConfig, path: Path) -> None:
    try:
        if path.is_file() and load_feature_config(path) == cfg:
            return
    except ConfigError:
        pass
    config_mod.save(cfg, path)


def extract_features(data_dir: str | os.PathLike, dump_dir: str | os.PathLike | None, cfg: FeatureConfig | None = None,
                     cmvn_out: str | os.PathLike | None = None, nj: int = 1, progress: bool = True) -> dict:
    """Compute features for every utterance of a data dir into ``dump_dir/<utt>.npy``.

    Writes float32 ``(T, F)`` un-normalised features (atomically, one file per utterance), then
    ``data_dir/feats.scp`` (utt -> absolute npy path), ``data_dir/utt2num_frames``,
    ``data_dir/feats.yaml`` (the config; also copied to ``dump_dir/feats.yaml``) and, if
    ``cmvn_out`` is given, global CMVN stats over all frames. Utterances whose npy already exists
    are skipped (resumable) but still counted in the stats. A dump dir made with a different config
    is refused. ``nj`` > 1 runs that many worker processes with one torch thread each.
    ``dump_dir`` None (stats only, for training on the fly): nothing is dumped and no ``feats.scp``
    written (one of an earlier dump is removed); ``utt2num_frames``, ``feats.yaml`` and the stats
    (``cmvn_out``, required) are.
    Returns ``{"utterances", "computed", "skipped", "frames", "dump_dir"}``.
    """
    from tqdm import tqdm

    cfg = cfg or FeatureConfig()
    data_dir = Path(data_dir)
    if dump_dir is None and cmvn_out is None:
        raise ConfigError("extract-features without a dump dir (stats only) needs --cmvn-out: it computes nothing else")
    dump = None if dump_dir is None else Path(dump_dir).resolve()
    dd = DataDir.load(data_dir)
    utts = list(dd.utt_ids)
    if not utts:
        raise DataDirError(f"{data_dir}: no utterances to extract features for")
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(dump)
    clean_stale_temps(data_dir, ["feats.scp", "utt2num_frames", "feats.yaml"])  # a killed run's partial writes
    if cmvn_out is not None:
        clean_stale_temps(Path(cmvn_out).parent, [Path(cmvn_out).name])
    if dump is not None:
        cfg_yaml = dump / "feats.yaml"
        if cfg_yaml.is_file():
            old = load_feature_config(cfg_yaml)
            if old != cfg:
                raise ConfigError(
                    f"{dump} holds features made with a different config ({cfg_yaml}: {old}); "
                    f"use another --dump dir or delete it")
        _save_config_if_changed(cfg, cfg_yaml)
    want_stats = cmvn_out is not None
    cfg_dict = dataclasses.asdict(cfg)
    acc = CMVNAccumulator(cfg.dim)
    frames: dict[str, int] = {}
    counts = {"computed": 0, "skipped": 0}
    errors: list[str] = []

    def handle(res: tuple) -> None:
        utt, status, n, s, ss, err = res
        if status == "error":
            errors.append(err)
            return
        counts[status] += 1
        frames[utt] = n
        if want_stats:
            acc.add_stats(s, ss, n)

    nj = max(1, min(int(nj), len(utts)))
    bar = tqdm(total=len(utts), desc="extract-features", unit="utt", disable=not progress)
    if nj == 1:
        _worker_init(str(data_dir), cfg_dict, None if dump is None else str(dump), want_stats, None)
        try:
            for utt in utts:
                handle(_process(utt))
                bar.update()
        finally:
            _WORKER.clear()
    else:
        import multiprocessing as mp

        from . import extract  # noqa: F401 - torch is imported here, before the fork

        # fork (Linux): workers inherit the imported modules and start at once; torch's at-fork
        # handlers keep the child's thread pools usable. spawn elsewhere.
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        chunk = max(1, min(16, len(utts) // (nj * 4)))
        with ctx.Pool(nj, initializer=_worker_init,
                      initargs=(str(data_dir), cfg_dict, None if dump is None else str(dump), want_stats, 1)) as pool:
            for res in pool.imap_unordered(_process, utts, chunksize=chunk):
                handle(res)
                bar.update()
    bar.close()
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise AudioError(f"feature extraction failed for {len(errors)} utterance(s) of {data_dir} "
                         f"(fix or remove them from the data dir, then rerun; finished ones are kept):\n  "
                         f"{shown}{more}")
    if dump is not None:
        write_kaldi_map(data_dir / "feats.scp", {u: str(dump / f"{utt_file_name(u)}.npy") for u in utts})
    elif (data_dir / "feats.scp").is_file():
        (data_dir / "feats.scp").unlink()  # an earlier dump's: these stats do not vouch for it
    write_kaldi_map(data_dir / "utt2num_frames", {u: str(frames[u]) for u in utts})
    _save_config_if_changed(cfg, data_dir / "feats.yaml")
    if want_stats:
        acc.compute().save(cmvn_out)
    return {"utterances": len(utts), "computed": counts["computed"], "skipped": counts["skipped"],
            "frames": int(sum(frames.values())), "dump_dir": None if dump is None else str(dump)}


# ---------------------------------------------------------------------------------------------
# the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="Kaldi-style data dir (wav.scp, utt2spk, ...)")
    parser.add_argument("--dump", default=None, help="folder for the per-utterance .npy features (required "
                        "unless --stats-only)")
    parser.add_argument("--stats-only", action="store_true", help="no dump: only the CMVN stats (--cmvn-out), "
                        "utt2num_frames and feats.yaml, for training with --train.on_the_fly true")
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
    if (args.dump is None) != args.stats_only:
        raise ConfigError("extract-features: give --dump DIR, or --stats-only (with --cmvn-out) for on-the-fly training")
    t0 = time.perf_counter()
    summary = extract_features(args.data, None if args.stats_only else args.dump, cfg, cmvn_out=args.cmvn_out, nj=args.nj,
                               progress=not args.no_progress)
    dt = time.perf_counter() - t0
    print(f"extract-features: {summary['utterances']} utterances ({summary['computed']} computed, "
          f"{summary['skipped']} already there and skipped), {summary['frames']} frames of dim {cfg.dim} "
          f"in {dt:.1f} s -> {summary['dump_dir'] or 'no dump (stats only)'}"
          + (f"; CMVN stats -> {args.cmvn_out}" if args.cmvn_out else ""), file=sys.stderr)
    return 0
