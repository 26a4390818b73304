"""Checkpoints: atomic save, safe load (``weights_only=True``), best-N bookkeeping, averaging.

Layout inside an experiment dir::

    checkpoints/epoch_0007.pt   one per kept epoch (best-N by the dev metric, plus the newest)
    checkpoints/last.pt         the newest epoch, used to resume after a kill
    checkpoints/avg_best2.pt    the averaged model: the mean of the best k epochs' weights (one such
                                file; the trainer picks k on dev, ``asr average --n`` sets it)
    checkpoints/best.json       dev metric per kept epoch
    average.json                which epochs avg_best*.pt averages, and how they were chosen

A checkpoint is a dict of tensors and plain Python values only, so it loads with
``torch.load(weights_only=True)`` and a file from an untrusted source cannot run code.
"""
from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_save, atomic_write_json, clean_stale_temps
from .errors import CheckpointError

FORMAT_VERSION = 1
AVERAGE_RECORD = "average.json"  # in the experiment dir, beside checkpoints/


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    state = dict(state)
    state.setdefault("format_version", FORMAT_VERSION)
    atomic_save(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; CheckpointError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): delete it and resume from another epoch")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({msg}); delete it and resume from another epoch"
        ) from None
    except pickle.UnpicklingError as e:  # content weights_only=True refuses (pickled objects, code)
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded safely ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "only files written by this toolkit are accepted"
        ) from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"checkpoint {path} is not an asr checkpoint (no format_version)")
    if state["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {state['format_version']}, this toolkit reads "
            f"version {FORMAT_VERSION}"
        )
    return state


def epoch_path(ckpt_dir: Path, epoch: int) -> Path:
    return ckpt_dir / f"epoch_{epoch:04d}.pt"


def update_best(ckpt_dir: Path, epoch: int, metric: float, keep: int, lower_is_better: bool = True) -> list[int]:
    """Record ``metric`` for ``epoch``; delete epoch files that fell out of the best ``keep``.

    The newest epoch's file is always kept (``last.pt`` points at its content). Returns the kept
    best epochs, best first.
    """
    best_file = ckpt_dir / "best.json"
    table: dict[str, float] = json.loads(best_file.read_text()) if best_file.is_file() else {}
    table[str(epoch)] = float(metric)
    ranked = sorted(table.items(), key=lambda kv: kv[1] if lower_is_better else -kv[1])
    kept = dict(ranked[:keep])
    atomic_write_json(best_file, kept)
    for p in ckpt_dir.glob("epoch_*.pt"):
        e = int(p.stem.split("_")[1])
        if str(e) not in kept and e != epoch:
            p.unlink(missing_ok=True)
    return [int(e) for e in kept]


def best_epochs(ckpt_dir: Path) -> list[int]:
    best_file = Path(ckpt_dir) / "best.json"
    if not best_file.is_file():
        raise CheckpointError(f"{best_file} does not exist: train the model first")
    table = json.loads(best_file.read_text())
    return [int(e) for e, _ in sorted(table.items(), key=lambda kv: kv[1])]


def average_checkpoints(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the ``model`` state dicts in ``paths`` (integer buffers from the last)."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    avg: dict[str, torch.Tensor] = {}
    for p in paths:
        sd = load_checkpoint(p)["model"]
        for k, v in sd.items():
            if k not in avg:
                avg[k] = v.clone().double() if v.is_floating_point() else v.clone()
            elif v.is_floating_point():
                avg[k] += v.double()
            else:
                avg[k] = v.clone()
    n = len(paths)
    return {k: (v / n).float() if v.is_floating_point() else v for k, v in avg.items()}


def average_best(exp_dir: str | os.PathLike, n: int) -> Path:
    """Average the best ``n`` epochs of ``exp_dir`` (fewer if fewer are kept) into ``checkpoints/avg_best{n}.pt``,
    the experiment's averaged model from now on (``asr average``; the trainer chooses k on dev instead)."""
    epochs = best_epochs(Path(exp_dir) / "checkpoints")[:n]
    return write_average(exp_dir, epochs, {"chosen_by": f"asr average --n {n}"})


def write_average(exp_dir: str | os.PathLike, epochs: list[int], record: dict[str, Any]) -> Path:
    """Write the mean of ``epochs``' weights as the experiment's averaged model,
    ``checkpoints/avg_best{len(epochs)}.pt`` (what ``asr package`` and ``load_lm`` take), remove the
    averages written before, and record the epochs and ``record`` (how they were chosen) in average.json."""
    exp = Path(exp_dir)
    ckpt_dir = exp / "checkpoints"
    clean_stale_temps(ckpt_dir)
    paths = [epoch_path(ckpt_dir, e) for e in epochs]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise CheckpointError(f"best checkpoints missing: {missing}")
    base = load_checkpoint(paths[0])
    out = ckpt_dir / f"avg_best{len(epochs)}.pt"
    save_checkpoint(out, {
        "model": average_checkpoints(paths),
        "model_config": base.get("model_config"),
        "input_dim": base.get("input_dim"),
        "vocab_size": base.get("vocab_size"),
        "kind": base.get("kind", "acoustic"),
        "averaged_epochs": list(epochs),
    })
    for old in ckpt_dir.glob("avg_best*.pt"):
        if old != out:
            old.unlink()
    atomic_write_json(exp / AVERAGE_RECORD, {"epochs": list(epochs), "checkpoint": f"checkpoints/{out.name}", **record})
    return out


def add_arguments(p) -> None:
    p.add_argument("--exp", required=True, help="experiment dir with checkpoints/")
    p.add_argument("--n", type=int, default=3, help="number of best epochs to average")


def run(args) -> int:
    out = average_best(args.exp, args.n)
    print(f"averaged best {args.n} epochs -> {out}")
    return 0
