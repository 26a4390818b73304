"""One training loop for the acoustic model and the LM, on CPU or GPU, single process or DDP.

``fit(task, cfg, exp_dir)`` runs epochs of a :class:`TrainTask`: AdamW/Adam, warm-up then cosine
decay or plateau LR schedules, gradient clipping and accumulation, AMP (bf16/fp16) on CUDA, early
stopping on a dev metric, an atomic checkpoint per epoch (``last.pt`` + best-N), exact resume after a
kill, training curves (PNG) and a log line per epoch. At the end the averages of the best 1..N epochs
are evaluated on dev and the best of them is kept as the averaged model (``average.json`` says which).

``fit`` reads as its named steps: ``setup``, ``resume_from_checkpoint`` (or ``start_fresh``), then per
epoch ``train_epoch``, ``dev_metrics``, ``end_epoch``, ``save_epoch``, and ``finish``. The task knows its
data and metrics; the loop knows none of them (what it logs as throughput is the task's own unit).

Distributed training uses ``torchrun`` (no launcher of our own): when ``WORLD_SIZE`` > 1 the loop
joins the process group (:func:`ddp_backend`: NCCL on CUDA, gloo on CPU), wraps the model in DDP, and each rank takes its
slice of every global batch. Losses are summed and divided by the *global* item count, so the
gradients equal single-process training on the same global batch. Only rank 0 logs and writes.

``asr train`` (this module's CLI) trains the CTC acoustic model.
"""
from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Protocol

import numpy as np
import torch
from torch import nn

from . import config as config_mod
from .config import split_overrides  # noqa: F401 (re-exported: asr.train.split_overrides)
from .atomic import atomic_copy, atomic_write_text, clean_stale_temps
from .checkpoint import (AVERAGE_RECORD, average_checkpoints, best_epochs, epoch_path, load_checkpoint,
                         save_checkpoint, update_best, write_average)
from .errors import ASRError, ConfigError


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20  # maximum number of epochs
    max_frames: int = 20000  # batch size as padded input frames (global, across DDP ranks)
    max_batch: int = 128  # upper bound on utterances per batch
    optimizer: Literal["adamw", "adam"] = "adamw"  # optimiser
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 1e-3  # AdamW weight decay
    schedule: Literal["warmup_cosine", "warmup_plateau", "constant"] = "warmup_cosine"  # LR schedule
    warmup_steps: int = 200  # linear warm-up steps
    min_lr_ratio: float = 0.05  # cosine floor as a fraction of lr
    plateau_factor: float = 0.5  # plateau: LR multiplier when the dev metric stalls
    plateau_patience: int = 1  # plateau: epochs without improvement before reducing LR
    grad_clip: float = 5.0  # max global gradient norm (0 = off)
    accum_grad: int = 1  # gradient accumulation steps
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"  # autocast: auto = bf16 on CUDA if supported, else fp16 (GradScaler), off on CPU; bf16/fp16 given explicitly apply on CPU too
    specaugment: bool = True  # SpecAugment on training batches (acoustic model)
    specaug_freq_masks: int = 2  # SpecAugment: frequency bands masked per utterance
    specaug_freq_width: int = 27  # SpecAugment: widest frequency band (feature bins)
    specaug_time_masks: int = 2  # SpecAugment: time spans masked per utterance
    specaug_time_ratio: float = 0.05  # SpecAugment: widest time span as a fraction of the utterance
    freq_warp: float = 0.0  # VTLP: per-utterance frequency warp factor in [1 - x, 1 + x] (fbank features; 0 = off)
    sortagrad: int = 1  # first N epochs take batches shortest-first (curriculum; speeds up CTC's start)
    early_stop_metric: str = "dev_cer"  # metric for best-N, early stopping and plateau (lower is better)
    patience: int = 5  # early stopping: epochs without improvement (0 = off)
    keep_best: int = 3  # checkpoints kept by dev metric
    average: int = 3  # average the best-N checkpoints at the end (0 = off)
    seed: int = 1  # seed for weights, batch order and augmentation
    num_workers: int = 0  # DataLoader worker processes (0 on small CPUs)
    cache_features: bool = True  # keep features in RAM after first epoch
    threads: int = 0  # torch CPU threads (0 = torch default)
    pack_sequences: Literal["auto", "always", "never"] = "auto"  # how the BiLSTM sees padded batches in training: auto = packed on CUDA, per-direction ("split", same outputs, unpacked speed) on CPU; always = packed; never = the padded batch (backward direction starts on padding)
    max_minutes: float = 0.0  # stop after the epoch that passes this wall-clock budget (0 = none)

    def __post_init__(self) -> None:
        for k in ("specaug_freq_masks", "specaug_freq_width", "specaug_time_masks"):
            if getattr(self, k) < 0:
                raise ConfigError(f"{k}: must be >= 0, got {getattr(self, k)}")
        if not 0.0 <= self.freq_warp < 0.5:
            raise ConfigError(f"freq_warp: must be within [0, 0.5), got {self.freq_warp}")
        if not 0.0 <= self.specaug_time_ratio <= 1.0:
            raise ConfigError(f"specaug_time_ratio: must be within [0, 1], got {self.specaug_time_ratio}")


class TrainTask(Protocol):
    """What ``fit`` needs from a task (acoustic model, LM)."""

    model: nn.Module
    kind: str
    metric_names: tuple[str, ...]  # what ``evaluate`` returns; with dev_loss, the choices of early_stop_metric
    throughput_unit: str  # what ``batch_units`` counts (e.g. "audio_sec", "tokens"); logged as <unit>_per_sec

    def train_batches(self, epoch: int, rank: int, world: int) -> list[tuple[Any, int]]:
        """Local batches for this rank, each with the size of its global batch."""

    def dev_batches(self) -> Iterable[Any]: ...

    def loss(self, model: nn.Module, batch: Any, device: torch.device, train: bool) -> tuple[torch.Tensor, int]:
        """Summed loss over the batch's items and the number of items."""

    def batch_units(self, batch: Any) -> float:
        """The amount of ``throughput_unit`` in a training batch (0: no throughput figure)."""

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """The dev metrics named in ``metric_names`` (e.g. dev_cer, dev_wer)."""

    def checkpoint_meta(self) -> dict[str, Any]: ...


# ----------------------------------------------------------------------------- distributed helpers

def dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` = CUDA when present, else CPU; ``cuda`` = this rank's GPU (``LOCAL_RANK`` modulo the GPUs
    there are, so more processes than GPUs share them round-robin)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ASRError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
        if name == "cuda":
            name = f"cuda:{local_rank % torch.cuda.device_count()}"
    return torch.device(name)


DDP_BACKEND_ENV = "ASR_DDP_BACKEND"


def ddp_backend(device: torch.device) -> str:
    """The process-group backend for DDP on ``device``: NCCL on CUDA, gloo on CPU (and on CUDA where
    this torch has no NCCL). ``$ASR_DDP_BACKEND`` (nccl | gloo) overrides it, e.g. gloo for several
    ranks on one GPU, which NCCL refuses."""
    want = os.environ.get(DDP_BACKEND_ENV, "").strip().lower()
    if want:
        if want not in ("nccl", "gloo"):
            raise ConfigError(f"${DDP_BACKEND_ENV}={want!r}: use nccl or gloo (or unset it: NCCL on CUDA, gloo on CPU)")
        if want == "nccl" and device.type != "cuda":
            raise ConfigError(f"${DDP_BACKEND_ENV}=nccl needs CUDA, but the device is {device}; use gloo")
        return want
    if device.type == "cuda" and torch.distributed.is_nccl_available():
        return "nccl"
    return "gloo"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _rng_state() -> dict:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()[1].tolist(),
          "python": repr(random.getstate())}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    np.random.seed(0)
    ns = np.random.get_state()
    np.random.set_state((ns[0], np.asarray(st["numpy"], dtype=np.uint32), 624, 0, 0.0))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


# ----------------------------------------------------------------------------- schedules

class LRSchedule:
    """Warm-up then cosine decay (per step) or plateau reduction (per epoch)."""

    def __init__(self, cfg: TrainConfig, total_steps: int):
        self.cfg = cfg
        self.total = max(1, total_steps)
        self.plateau_scale = 1.0
        self.bad_epochs = 0
        self.best = math.inf

    def factor(self, step: int) -> float:
        c = self.cfg
        warm = min(1.0, (step + 1) / c.warmup_steps) if c.warmup_steps > 0 else 1.0
        if c.schedule == "warmup_cosine":
            t = min(1.0, max(0.0, (step - c.warmup_steps) / max(1, self.total - c.warmup_steps)))
            decay = c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
            return warm * decay
        if c.schedule == "warmup_plateau":
            return warm * self.plateau_scale
        return warm

    def epoch_end(self, metric: float) -> None:
        if self.cfg.schedule != "warmup_plateau":
            return
        if metric < self.best:
            self.best, self.bad_epochs = metric, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.cfg.plateau_patience:
                self.plateau_scale *= self.cfg.plateau_factor
                self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"plateau_scale": self.plateau_scale, "bad_epochs": self.bad_epochs, "best": self.best}

    def load_state_dict(self, st: dict) -> None:
        self.plateau_scale, self.bad_epochs, self.best = st["plateau_scale"], st["bad_epochs"], st["best"]


# ----------------------------------------------------------------------------- logging and plots

class RunLog:
    """Rank-0 log: ``train.log`` lines, ``metrics.jsonl`` rows, ``training_curves.png``."""

    def __init__(self, exp_dir: Path, enabled: bool, plot_every_seconds: float = 30.0):
        self.exp_dir = exp_dir
        self.enabled = enabled
        self.plot_every = plot_every_seconds
        self.last_plot = 0.0

    def line(self, msg: str) -> None:
        if not self.enabled:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        text = f"{stamp} {msg}"
        print(text, flush=True)
        with open(self.exp_dir / "train.log", "a", encoding="utf-8") as f:
            f.write(text + "\n")

    def has_epoch_line(self, epoch: int, step: int) -> bool:
        """Whether train.log already holds the line of ``epoch`` (a kill may have come before it)."""
        log = self.exp_dir / "train.log"
        return log.is_file() and f" epoch={epoch} step={step} " in log.read_text(encoding="utf-8")

    def write_history(self, history: list[dict], final: bool = False) -> None:
        """metrics.jsonl every epoch; the PNG at most every ``plot_every`` seconds and at the end."""
        if not self.enabled:
            return
        atomic_write_text(self.exp_dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))
        if final or time.time() - self.last_plot >= self.plot_every:
            plot_curves(history, self.exp_dir / "training_curves.png")
            self.last_plot = time.time()


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    epochs = [h["epoch"] for h in history]
    rate_keys = [k for k in ("dev_cer", "dev_wer") if k in history[0]]
    ncols = 2 if rate_keys or "dev_ppl" in history[0] else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 3.6), squeeze=False)
    ax = axes[0][0]
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax.plot(epochs, [h["dev_loss"] for h in history], "s-", label="dev")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per item")
    ax.set_title("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    if ncols == 2:
        ax = axes[0][1]
        keys = rate_keys or ["dev_ppl"]
        for k in keys:
            vals = [h[k] * (100 if k != "dev_ppl" else 1) for h in history]
            ax.plot(epochs, vals, "o-", label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel("%" if rate_keys else "perplexity")
        ax.set_title("dev error rates" if rate_keys else "dev perplexity")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    from .atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- the loop, as named steps
#
# fit = setup -> resume_from_checkpoint (or start_fresh) -> per epoch: train_epoch, dev_metrics,
# end_epoch, save_epoch -> finish (choose_average). The epoch-end sequence on rank 0 is: the epoch's
# checkpoint file, last.pt, then what _record_epoch derives from last.pt's state (best.json, the
# train.log line, metrics.jsonl + curves); resume redoes that last part for the epoch in last.pt, so a
# kill at any point of it loses nothing.

# Points of the epoch-end sequence (and of finish) where ``ASR_TEST_KILL_AT`` can end the process.
EPOCH_KILL_POINTS = ("dev_metrics", "epoch_file", "last_pt", "best_json", "train_log", "metrics_jsonl")
FINISH_KILL_POINTS = ("average",)
KILLED_EXIT_CODE = 77


def _kill_point(name: str, epoch: int | None = None) -> None:
    """Test hook (tests/test_crash_safety.py): with ``ASR_TEST_KILL_AT=NAME[:EPOCH]`` in the environment
    the process ends at once at that point (``os._exit``: nothing flushed or cleaned up, as a SIGKILL)."""
    want = os.environ.get("ASR_TEST_KILL_AT")
    if want:
        point, _, at = want.partition(":")
        if point == name and (not at or int(at) == epoch):
            os._exit(KILLED_EXIT_CODE)


@dataclass
class TrainState:
    """What training changes epoch by epoch; saved in every checkpoint, restored by resume."""

    epoch: int = 0  # last finished epoch
    step: int = 0  # optimizer steps taken
    history: list[dict] = field(default_factory=list)  # one row of figures per finished epoch
    best_metric: float = math.inf  # best early-stop metric so far
    bad_epochs: int = 0  # epochs since the early-stop metric last improved (0: the last epoch did)
    stopped: bool = False  # no epoch left to run (the last one, early stop or time budget)


@dataclass
class Run:
    """One training run: the task, its model and optimiser on their device, where it writes, its state."""

    task: TrainTask
    cfg: TrainConfig
    exp: Path
    log: RunLog
    rank: int
    world: int
    device: torch.device
    model: nn.Module  # the task's model on ``device``
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    schedule: LRSchedule
    amp_dtype: torch.dtype | None
    state: TrainState = field(default_factory=TrainState)
    ddp_model: nn.Module | None = None  # what the training steps call: DDP around ``model`` when world > 1

    @property
    def ckpt_dir(self) -> Path:
        return self.exp / "checkpoints"

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def metric_name(self) -> str:
        return self.cfg.early_stop_metric

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)


def _amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``cfg.amp`` on ``device`` (None: fp32). ``auto`` is off on CPU; an explicit
    bf16 or fp16 applies on CPU too (PyTorch autocasts there; the tests exercise the GPU's paths so)."""
    if cfg.amp == "off" or (cfg.amp == "auto" and device.type != "cuda"):
        return None
    if cfg.amp == "fp16":
        return torch.float16
    if cfg.amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def check_metric(task: TrainTask, cfg: TrainConfig) -> None:
    """Refuse an ``early_stop_metric`` the task does not compute, before anything starts (on every rank)."""
    known = ("dev_loss", *task.metric_names)
    if cfg.early_stop_metric not in known:
        raise ConfigError(f"train.early_stop_metric {cfg.early_stop_metric!r} is not computed when training the "
                          f"{task.kind} model; use one of {', '.join(known)} (lower is better)")


def setup(task: TrainTask, cfg: TrainConfig, exp_dir: str | os.PathLike, device: str = "auto") -> Run:
    """Check the config against the task, join the process group, put the model on its device and build
    the optimiser, gradient scaler and LR schedule."""
    check_metric(task, cfg)
    rank, world, local_rank = dist_info()
    dev = resolve_device(device, local_rank)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if world > 1 and not torch.distributed.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        torch.distributed.init_process_group(backend=ddp_backend(dev))
    exp = Path(exp_dir)
    if rank == 0:
        (exp / "checkpoints").mkdir(parents=True, exist_ok=True)
        clean_stale_temps(exp / "checkpoints")
        clean_stale_temps(exp, ["metrics.jsonl", "training_curves.png", AVERAGE_RECORD])
    model = task.model.to(dev)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    params = [p for p in model.parameters() if p.requires_grad]
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay if cfg.optimizer == "adamw" else 0.0)
    amp_dtype = _amp_dtype(cfg, dev)
    scaler = torch.amp.GradScaler(dev.type, enabled=amp_dtype == torch.float16)  # fp16 only (bf16 needs none)
    steps_per_epoch = max(1, len(task.train_batches(0, rank, world)) // cfg.accum_grad)
    return Run(task, cfg, exp, RunLog(exp, rank == 0), rank, world, dev, model, params, optimizer, scaler,
               LRSchedule(cfg, steps_per_epoch * cfg.epochs), amp_dtype)


def resume_from_checkpoint(run: Run) -> bool:
    """Continue from ``checkpoints/last.pt`` if there is one (weights, optimiser, schedule, history, every
    rank's random streams), and redo the epoch-end records that follow last.pt, which a kill may have cut."""
    last = run.ckpt_dir / "last.pt"
    if not last.is_file():
        return False
    st = load_checkpoint(last, map_location="cpu")
    run.model.load_state_dict(st["model"])
    run.optimizer.load_state_dict(st["optimizer"])
    run.scaler.load_state_dict(st["scaler"])
    run.schedule.load_state_dict(st["schedule"])
    run.state = TrainState(epoch=st["epoch"], step=st["step"], history=st["history"], best_metric=st["best_metric"],
                           bad_epochs=st["bad_epochs"], stopped=bool(st.get("stopped")))
    # each DDP rank continues its own random streams (dropout, SpecAugment) where it stopped
    ranks_rng = st.get("rng_ranks")
    _set_rng_state(ranks_rng[run.rank] if run.distributed and ranks_rng and len(ranks_rng) == run.world
                   else st["rng"])
    run.log.line(f"resumed from {last} (epoch {st['epoch']}, step {st['step']})")
    if run.rank == 0 and run.state.history:
        _record_epoch(run, run.state.history[-1], repair=True)
    if run.state.stopped:
        run.log.line("training had already finished (early stop or budget); nothing to do")
    return True


def start_fresh(run: Run) -> None:
    seed_everything(run.cfg.seed)
    if run.rank == 0:
        run.log.line(f"training {run.task.kind} model: {sum(p.numel() for p in run.params):,} parameters on "
                     f"{run.device}" + (f", {run.world} processes (DDP)" if run.distributed else "")
                     + (f", autocast {run.amp_dtype}" if run.amp_dtype else ""))


def _optimizer_step(run: Run) -> None:
    cfg, opt, scaler = run.cfg, run.optimizer, run.scaler
    for g in opt.param_groups:
        g["lr"] = cfg.lr * run.schedule.factor(run.state.step)
    if cfg.grad_clip > 0:
        scaler.unscale_(opt)
        gnorm = torch.nn.utils.clip_grad_norm_(run.params, cfg.grad_clip)
        if not torch.isfinite(gnorm):  # skip the update, count the step
            opt.zero_grad(set_to_none=True)
            scaler.update()
            run.state.step += 1
            return
    scaler.step(opt)
    scaler.update()
    opt.zero_grad(set_to_none=True)
    run.state.step += 1


def train_epoch(run: Run, epoch: int) -> dict[str, Any]:
    """One pass over this rank's batches of ``epoch``; returns the epoch's training figures (loss per
    item over all ranks, LR, seconds, the task's throughput in its own unit per second)."""
    task, cfg, dev = run.task, run.cfg, run.device
    model = run.ddp_model if run.ddp_model is not None else run.model
    model.train()
    batches = task.train_batches(epoch, run.rank, run.world)
    tot_loss, tot_items, units, t0 = 0.0, 0, 0.0, time.time()
    last_note = t0
    iterator = batches
    if run.rank == 0:
        from tqdm import tqdm

        iterator = tqdm(batches, desc=f"epoch {epoch}", unit="batch", leave=False, dynamic_ncols=True, disable=None)
    run.optimizer.zero_grad(set_to_none=True)
    for bi, (batch, global_n) in enumerate(iterator):
        with run.autocast():
            loss_sum, n_items = task.loss(model, batch, dev, True)
        global_items = n_items
        if run.distributed:
            t = torch.tensor([float(n_items)], device=dev)
            torch.distributed.all_reduce(t)
            global_items = int(t.item())
        loss = loss_sum / max(1, global_items) * run.world / cfg.accum_grad
        run.scaler.scale(loss).backward()
        tot_loss += float(loss_sum.detach())
        tot_items += n_items
        units += task.batch_units(batch)
        if (bi + 1) % cfg.accum_grad == 0 or bi + 1 == len(batches):
            _optimizer_step(run)
        if run.rank == 0 and hasattr(iterator, "set_postfix"):
            iterator.set_postfix(loss=f"{tot_loss / max(1, tot_items):.3f}",
                                 lr=f"{run.optimizer.param_groups[0]['lr']:.2e}")
            if iterator.disable and time.time() - last_note >= 60:  # no terminal: a progress line a minute
                last_note = time.time()
                run.log.line(f"epoch {epoch}: {bi + 1}/{len(batches)} batches, loss "
                             f"{tot_loss / max(1, tot_items):.4g}, {time.time() - t0:.0f}s")
    train_time = time.time() - t0
    if run.distributed:
        t = torch.tensor([tot_loss, float(tot_items), units], device=dev)
        torch.distributed.all_reduce(t)
        tot_loss, tot_items, units = float(t[0]), int(t[1]), float(t[2])
    row: dict[str, Any] = {"epoch": epoch, "step": run.state.step, "train_loss": tot_loss / max(1, tot_items),
                           "lr": run.optimizer.param_groups[0]["lr"], "train_seconds": round(train_time, 1)}
    if units:
        row[f"{task.throughput_unit}_per_sec"] = round(units / train_time, 1)
    return row


def dev_metrics(run: Run, model: nn.Module) -> dict[str, float]:
    """``dev_loss`` (loss per item) and the task's own metrics (``task.metric_names``) of ``model`` on dev."""
    task = run.task
    model.eval()
    with torch.no_grad():
        dl, dn = 0.0, 0
        for batch in task.dev_batches():
            with run.autocast():
                ls, n = task.loss(model, batch, run.device, False)
            dl += float(ls)
            dn += n
        out = {"dev_loss": dl / max(1, dn)}
        out.update(task.evaluate(model, run.device))
    missing = [m for m in task.metric_names if m not in out]
    if missing:
        raise TypeError(f"{type(task).__name__}.evaluate did not return {missing}, which its metric_names declare")
    return out


def end_epoch(run: Run, row: dict[str, Any], t_start: float) -> str | None:
    """Take rank 0's early-stop metric on every rank, step the plateau schedule, count epochs without
    improvement, append ``row`` to the history; returns why training stops early after it, or None."""
    cfg, st, epoch = run.cfg, run.state, row["epoch"]
    metric_t = torch.tensor([row.get(run.metric_name, row.get("dev_loss", 0.0))], dtype=torch.float64)
    if run.distributed:
        metric_t = metric_t.to(run.device)
        torch.distributed.broadcast(metric_t, 0)
    metric = float(metric_t.item())
    run.schedule.epoch_end(metric)
    if metric < st.best_metric:
        st.best_metric, st.bad_epochs = metric, 0
    else:
        st.bad_epochs += 1
    st.history.append(row)
    st.epoch = epoch
    reason = None
    if cfg.patience > 0 and st.bad_epochs >= cfg.patience:
        reason = f"no {run.metric_name} improvement in {st.bad_epochs} epochs"
    if cfg.max_minutes > 0 and (time.time() - t_start) / 60 >= cfg.max_minutes and epoch < cfg.epochs:
        reason = row["note"] = "time budget reached"
    st.stopped = reason is not None or epoch == cfg.epochs
    return reason


def save_epoch(run: Run, row: dict[str, Any]) -> None:
    """Rank 0 writes the epoch: its checkpoint file, then ``last.pt`` (so last.pt never points ahead of the
    epoch files), then the records derived from that state (``_record_epoch``)."""
    st, epoch = run.state, row["epoch"]
    rng_ranks = None
    if run.distributed:  # every rank's RNG state, so that a resumed DDP run continues exactly
        rng_ranks = [None] * run.world
        torch.distributed.all_gather_object(rng_ranks, _rng_state())
    if run.rank == 0:
        state = {
            "kind": run.task.kind, "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict(), "schedule": run.schedule.state_dict(), "epoch": epoch,
            "step": st.step, "history": st.history, "best_metric": st.best_metric, "bad_epochs": st.bad_epochs,
            "rng": _rng_state(), "rng_ranks": rng_ranks, "stopped": st.stopped,
            "train_config": config_mod.to_dict(run.cfg), **run.task.checkpoint_meta(),
        }
        save_checkpoint(epoch_path(run.ckpt_dir, epoch), state)
        _kill_point("epoch_file", epoch)
        save_checkpoint(run.ckpt_dir / "last.pt", state)
        _kill_point("last_pt", epoch)
        _record_epoch(run, row)
    if run.distributed:
        torch.distributed.barrier()


def _format_row(row: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def _record_epoch(run: Run, row: dict[str, Any], repair: bool = False) -> None:
    """What follows last.pt for the epoch of ``row``: best.json, its train.log line, metrics.jsonl and
    the curves, each rebuilt from the run's state. ``repair`` (on resume, for the epoch in last.pt):
    the same writes again, the log line only if the killed run had not written it."""
    epoch = row["epoch"]
    update_best(run.ckpt_dir, epoch, row.get(run.metric_name, row.get("dev_loss", 0.0)), run.cfg.keep_best)
    _kill_point("best_json", epoch)
    if not (repair and run.log.has_epoch_line(epoch, row["step"])):
        run.log.line(_format_row(row) + (" *" if run.state.bad_epochs == 0 else ""))
    _kill_point("train_log", epoch)
    run.log.write_history(run.state.history, final=run.state.stopped)
    _kill_point("metrics_jsonl", epoch)


def choose_average(run: Run, n: int) -> dict[str, Any]:
    """Evaluate on dev the averages of the best k epochs for k = 1..n, keep the one with the best
    early-stop metric (ties: fewer epochs) as the experiment's averaged model; returns its record."""
    ckpt_dir, name = run.ckpt_dir, run.metric_name
    epochs = best_epochs(ckpt_dir)[:n]
    probe = copy.deepcopy(run.model)  # the trained model keeps its last weights
    candidates = []
    for k in range(1, len(epochs) + 1):
        probe.load_state_dict(average_checkpoints([epoch_path(ckpt_dir, e) for e in epochs[:k]]))
        m = dev_metrics(run, probe)
        candidates.append({"k": k, "epochs": epochs[:k], **m})
        run.log.line(f"average of the best {k} epoch(s) {epochs[:k]}: {_format_row(m)}")
    win = min(candidates, key=lambda c: c[name])  # the first of equals: fewer epochs
    path = write_average(run.exp, win["epochs"], {"metric": name, "k": win["k"], name: win[name],
                                                   "candidates": candidates})
    _kill_point("average")
    run.log.line(f"kept the average of the best {win['k']} of {len(epochs)} epochs ({name}={win[name]:.5g}) "
                 f"-> {path}; every k in {run.exp / AVERAGE_RECORD}")
    return {"path": path, "k": win["k"], "epochs": win["epochs"], "candidates": candidates}


def finish(run: Run) -> dict[str, Any]:
    """Leave the process group; rank 0 chooses the averaged model (``choose_average``). Returns the
    summary: best metric, epochs run and, on rank 0, the history and the averaged checkpoint."""
    st = run.state
    if run.distributed:  # the other ranks are done; only rank 0 evaluates the averages
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    summary: dict[str, Any] = {"best_metric": st.best_metric, "metric": run.metric_name, "epochs_run": len(st.history)}
    if run.rank == 0 and st.history:
        n = min(run.cfg.average, len(st.history), run.cfg.keep_best)
        if n > 0:
            chosen = choose_average(run, n)
            summary["averaged"] = str(chosen["path"])
            summary["average"] = chosen
        summary["history"] = st.history
    return summary


def fit(task: TrainTask, cfg: TrainConfig, exp_dir: str | os.PathLike, device: str = "auto",
        resume: bool = True) -> dict:
    """Train ``task.model``; returns the final summary (best epoch, metric, averaged checkpoint)."""
    run = setup(task, cfg, exp_dir, device)
    if not (resume and resume_from_checkpoint(run)):
        start_fresh(run)
    run.ddp_model = nn.parallel.DistributedDataParallel(
        run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None) if run.distributed else None
    t_start = time.time()
    while not run.state.stopped and run.state.epoch < cfg.epochs:
        epoch = run.state.epoch + 1
        row = train_epoch(run, epoch)
        if run.rank == 0:  # rank 0 evaluates; end_epoch broadcasts the metric
            row.update(dev_metrics(run, run.model))
        _kill_point("dev_metrics", epoch)
        reason = end_epoch(run, row, t_start)
        save_epoch(run, row)
        if reason:
            run.log.line(f"stopping after epoch {epoch}: {reason}")
    return finish(run)


# ----------------------------------------------------------------------------- acoustic model task

def lstm_mode(cfg: TrainConfig, device: torch.device) -> str:
    """``cfg.pack_sequences`` as an :meth:`AcousticModel.forward` mode for training on ``device``."""
    return {"always": "packed", "never": "padded"}.get(
        cfg.pack_sequences, "packed" if device.type == "cuda" else "split")


class CTCTask:
    """CTC acoustic-model training on dumped features."""

    kind = "acoustic"
    metric_names = ("dev_cer", "dev_wer")
    throughput_unit = "audio_sec"

    def __init__(self, model, train_set, dev_set, cfg: TrainConfig, tokenizer, model_config: dict,
                 specaugment=None, dev_max_frames: int | None = None, freq_warp=None,
                 frames_per_second: float = 100.0):
        self.model = model
        self.train_set = train_set
        self.dev_set = dev_set
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.model_config = model_config
        self.specaugment = specaugment
        self.freq_warp = freq_warp
        self.ctc = nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
        self.dev_max_frames = dev_max_frames or cfg.max_frames
        self.frames_per_second = frames_per_second  # of the input features (for the throughput figure)

    def train_batches(self, epoch, rank, world):
        from .data.dataset import bucket_batches, shard_batches

        plan = bucket_batches(self.train_set.lengths, self.cfg.max_frames, self.cfg.max_batch,
                              seed=self.cfg.seed, epoch=epoch, shuffle=True)
        if epoch <= self.cfg.sortagrad:  # SortaGrad: short utterances first
            lengths = self.train_set.lengths
            plan.sort(key=lambda b: max(lengths[i] for i in b))
        return _LazyBatches(self.train_set, list(shard_batches(plan, rank, world)), self.cfg.num_workers)

    def dev_batches(self):
        from .data.dataset import bucket_batches

        for b in bucket_batches(self.dev_set.lengths, self.dev_max_frames, self.cfg.max_batch, shuffle=False):
            yield self.dev_set.collate(b)

    def loss(self, model, batch, device, train):
        x = batch["feats"].to(device, non_blocking=True)
        lens = batch["feat_lens"].to(device)
        if train and self.freq_warp is not None:
            x = self.freq_warp(x, lens)
        if train and self.specaugment is not None:
            x = self.specaugment(x, lens)
        log_probs, out_lens = model(x, lens, mode=lstm_mode(self.cfg, device) if train else "packed")
        loss = self.ctc(log_probs.float().transpose(0, 1), batch["targets"].to(device), out_lens,
                        batch["target_lens"].to(device))
        return loss, len(batch["utts"])

    def batch_units(self, batch) -> float:
        return int(batch["feat_lens"].sum()) / self.frames_per_second

    def evaluate(self, model, device):
        from .decode.greedy import greedy_decode
        from .score import error_rates

        refs, hyps = [], []
        for batch in self.dev_batches():
            log_probs, out_lens = model(batch["feats"].to(device), batch["feat_lens"].to(device))
            for ids, utt in zip(greedy_decode(log_probs.detach().float().cpu().numpy(), out_lens.cpu().numpy()),
                                batch["utts"]):
                hyps.append(self.tokenizer.decode(ids))
            for i in range(len(batch["utts"])):
                start = int(batch["target_lens"][:i].sum())
                refs.append(self.tokenizer.decode(batch["targets"][start:start + int(batch["target_lens"][i])].tolist()))
        r = error_rates(refs, hyps)
        return {"dev_cer": r["cer"], "dev_wer": r["wer"]}

    def checkpoint_meta(self):
        return {"model_config": self.model_config, "input_dim": self.model.input_dim,
                "vocab_size": self.model.vocab_size}


class _LazyBatches:
    """A list-like of (collated batch, global size) that collates on access (keeps memory flat);
    with ``num_workers`` > 0, DataLoader workers collate ahead of the training step."""

    def __init__(self, dataset, plan, num_workers: int = 0):
        self.dataset = dataset
        self.plan = plan
        self.num_workers = num_workers

    def __len__(self):
        return len(self.plan)

    def __iter__(self):
        from .data.dataset import iter_batches

        yield from iter_batches(self.dataset, self.plan, self.num_workers, pin_memory=torch.cuda.is_available())


# ----------------------------------------------------------------------------- CLI

def add_arguments(p) -> None:
    p.add_argument("--train-data", required=True, help="training data dir with feats.scp and text")
    p.add_argument("--dev-data", required=True, help="dev data dir with feats.scp and text")
    p.add_argument("--tokens", required=True, help="tokens.txt of the character (or BPE) token set")
    p.add_argument("--cmvn", default=None, help="global CMVN stats (.npz) from the training features")
    p.add_argument("--exp", required=True, help="experiment dir (created; resumed if it has checkpoints/last.pt)")
    p.add_argument("--model-conf", default="conf/model/small.yaml", help="acoustic model YAML")
    p.add_argument("--train-conf", default="conf/train/cpu.yaml", help="training YAML")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if last.pt exists")
    p.add_argument("overrides", nargs="*", help="--model.KEY VALUE / --train.KEY VALUE (after --)")


def run(args) -> int:
    from .features import CMVN, SpecAugment, load_feature_config
    from .models.acoustic import AcousticModel, AcousticModelConfig
    from .text import load_tokenizer
    from .tokens import copy_token_files
    from .data.dataset import FeatureDataset

    ov = split_overrides(args.overrides)
    mcfg = config_mod.load(AcousticModelConfig, args.model_conf, ov.get("model"))
    tcfg = config_mod.load(TrainConfig, args.train_conf, ov.get("train"))
    exp = Path(args.exp)
    rank, world, _ = dist_info()
    tok = load_tokenizer(args.tokens)  # (checks the files before they are copied into the experiment)
    cmvn = CMVN.load(args.cmvn) if args.cmvn else None
    if rank == 0:
        exp.mkdir(parents=True, exist_ok=True)
        config_mod.save(mcfg, exp / "model.yaml")
        config_mod.save(tcfg, exp / "train.yaml")
        copy_token_files(args.tokens, exp)  # (+ bpe.model: decoding a BPE model needs it)
        if args.cmvn:
            atomic_copy(args.cmvn, exp / "cmvn.npz")
        feats_yaml = Path(args.train_data) / "feats.yaml"
        if feats_yaml.is_file():
            atomic_copy(feats_yaml, exp / "features.yaml")
    if tcfg.threads > 0:
        torch.set_num_threads(tcfg.threads)
    torch.manual_seed(tcfg.seed)
    # Build the model first: its front end tells which utterances are too short for CTC.
    probe_utt, probe_dim = _feature_dim(Path(args.train_data))
    if cmvn is not None and cmvn.dim != probe_dim:
        raise ConfigError(f"{args.cmvn} holds CMVN stats of dimension {cmvn.dim} but the features of "
                          f"{args.train_data} have {probe_dim} (utt '{probe_utt}'); give the stats computed from "
                          "these features, or extract the features again with the config the stats came from")
    model = AcousticModel(mcfg, probe_dim, tok.vocab_size)
    sub = model.subsampling
    rf = model.min_input_frames()
    train_set = FeatureDataset(args.train_data, tok, cmvn, cache=tcfg.cache_features, subsampling=sub,
                               receptive_field=rf, dim=probe_dim)
    dev_set = FeatureDataset(args.dev_data, tok, cmvn, cache=tcfg.cache_features, subsampling=sub,
                             receptive_field=rf, dim=probe_dim)
    if rank == 0 and (train_set.skipped or dev_set.skipped):
        print(f"skipped {len(train_set.skipped)} train / {len(dev_set.skipped)} dev utterances too short for their "
              f"transcripts after x{sub} subsampling")
    spec = SpecAugment(freq_masks=tcfg.specaug_freq_masks, freq_width=tcfg.specaug_freq_width,
                       time_masks=tcfg.specaug_time_masks,
                       time_width_ratio=tcfg.specaug_time_ratio) if tcfg.specaugment else None
    feats_yaml = Path(args.train_data) / "feats.yaml"
    fcfg = load_feature_config(feats_yaml) if feats_yaml.is_file() else None
    warp = _freq_warp(tcfg, Path(args.train_data), fcfg, cmvn) if tcfg.freq_warp > 0 else None
    task = CTCTask(model, train_set, dev_set, tcfg, tok, config_mod.to_dict(mcfg), spec, freq_warp=warp,
                   frames_per_second=fcfg.sample_rate / fcfg.hop_length if fcfg else 100.0)
    summary = fit(task, tcfg, exp, device=args.device, resume=not args.no_resume)
    if rank == 0 and summary.get("history"):
        h = summary["history"][-1]
        print(f"done: {summary['epochs_run']} epochs, best {summary['metric']}={summary['best_metric']:.4f}; "
              f"last epoch dev_cer={h.get('dev_cer', float('nan')):.4f} dev_wer={h.get('dev_wer', float('nan')):.4f}")
    return 0


def _freq_warp(tcfg: TrainConfig, data_dir: Path, fcfg, cmvn):
    """The VTLP module for ``tcfg.freq_warp``, from the feature config the features were made with
    (``fcfg``, read from the data dir's feats.yaml; None when it is missing)."""
    from .features import FreqWarp, mel_bin_centers

    if fcfg is None:
        raise ConfigError(f"train.freq_warp needs the feature config of {data_dir} to know the filter "
                          f"frequencies, but {data_dir / 'feats.yaml'} is missing (asr extract-features writes it)")
    try:
        centers = mel_bin_centers(fcfg)
    except ConfigError as e:
        raise ConfigError(f"train.freq_warp with the features of {data_dir}: {e}") from None
    return FreqWarp(centers, tcfg.freq_warp, mean=None if cmvn is None else cmvn.mean,
                    std=None if cmvn is None else cmvn.std, low_freq=fcfg.fmin, high_freq=fcfg.f_max)


def _feature_dim(data_dir: Path) -> tuple[str, int]:
    """(first utterance, its feature dimension) of a data dir's feats.scp."""
    from .data.datadir import read_kaldi_map
    from .data.dataset import load_feature_file
    from .errors import DataDirError

    scp = data_dir / "feats.scp"
    if not scp.is_file():
        raise DataDirError(f"{scp} is missing: run feature extraction first")
    feats = read_kaldi_map(scp)
    if not feats:
        raise DataDirError(f"{scp} is empty: no utterances to train on; rerun feature extraction")
    utt, first = next(iter(feats.items()))
    return utt, int(load_feature_file(first, utt).shape[1])
