#!/usr/bin/env python3
"""One-command GPU check: the real trainer on conf/model/large.yaml under fp32, bf16 and fp16, then DDP.

    python tools/bench/gpu_check.py [--json gpu_check.json]      # on a CUDA machine, <= 8 minutes
    python tools/bench/gpu_check.py --dry-run                    # tiny sizes on CPU (CI), < 1 minute

Needs nothing from the network. It writes a synthetic dumped-feature corpus on the spot (random
80-dim features of 2-12 s utterances with random character transcripts, as
``tools/bench/train_throughput.py``; the content does not change the timings, and the CTC loss
still falls as the model learns the label priors), then for each mode (``fp32`` = ``amp: off``,
``bf16``, ``fp16`` with the GradScaler):

- **trainer**: ``asr train`` (the CLI, in this process: FeatureDataset, DataLoader workers, bucketing,
  autocast, clipping, LR schedule, checkpoints) with ``conf/model/large.yaml`` and
  ``conf/train/gpu.yaml`` for ``--epochs`` epochs over the same utterances; its throughput is the
  best epoch after the first (the first one pays cuDNN's autotuning), in audio-seconds per second of
  the training loop (``audio_sec_per_sec`` of ``metrics.jsonl``: data loading included, the dev pass
  and the checkpoint writes not);
- **bare**: the model's forward + CTC + backward + optimiser step (``train_throughput.bare_epoch``)
  on the same batches, collated on the device beforehand, best of two passes after a warm-up;
- peak GPU memory of each, and whether the training loss fell (last epoch < first epoch: the same
  utterances every epoch, so the figures compare).

Overrides against gpu.yaml, so that both sides do the same work in a few steps: SpecAugment and VTLP
off (the bare loop has neither), ``warmup_steps`` short, constant LR, no averaging. Then a
2-process ``torchrun --standalone`` run of ``asr train`` on the one GPU with NCCL; where NCCL refuses
two ranks on one device it says so and runs the same DDP path over gloo (``ASR_DDP_BACKEND=gloo``).
PASS/FAIL lines at the end (exit status 1 if any FAIL): per mode trainer >= 90 % of bare and loss
fell; DDP finished; the whole check within ``--budget-minutes``. ``--dry-run``: a tiny model and
corpus on CPU (explicit bf16/fp16 autocast runs there), 2 gloo processes; the speed goal is printed
but not judged at those sizes.
"""
from __future__ import annotations

import argparse
import copy
import gc
import signal
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from train_throughput import bare_epoch, make_data  # noqa: E402

MODES = {"fp32": "off", "bf16": "bf16", "fp16": "fp16"}
GOAL = 0.90  # trainer throughput / bare model throughput


@dataclass(frozen=True)
class Sizes:
    utts: int  # training utterances (2-12 s each)
    dev_utts: int  # dev utterances (the dev pass is not timed)
    max_frames: int  # batch size in padded frames
    epochs: int  # epochs per mode (the first is the warm-up)
    num_workers: int  # DataLoader workers of the trainer
    warmup_steps: int  # LR warm-up steps
    model: tuple[str, ...] = ()  # --model.KEY VALUE overrides of conf/model/large.yaml
    ddp_utts: int = 0  # utterances of the DDP run (0: all)


# ~34k s of audio per epoch in ~21 batches: long enough that the DataLoader's start per epoch weighs
# little, short enough for three modes x (3 trainer epochs + 3 bare passes) and DDP in 8 minutes
FULL = Sizes(utts=4800, dev_utts=16, max_frames=160000, epochs=3, num_workers=4, warmup_steps=10, ddp_utts=600)
DRY = Sizes(utts=12, dev_utts=2, max_frames=3000, epochs=3, num_workers=0, warmup_steps=2,
            model=("--model.hidden", "24", "--model.layers", "1", "--model.conv_channels", "4",
                   "--model.dropout", "0.0"))


def train_argv(train_dir: Path, dev_dir: Path, tokens: Path, exp: Path, amp: str, sizes: Sizes, device: str,
               epochs: int) -> list[str]:
    return ["train", "--train-data", str(train_dir), "--dev-data", str(dev_dir), "--tokens", str(tokens),
            "--exp", str(exp), "--model-conf", str(REPO / "conf/model/large.yaml"),
            "--train-conf", str(REPO / "conf/train/gpu.yaml"), "--device", device, "--no-resume", "--",
            "--train.amp", amp, "--train.epochs", str(epochs), "--train.max_frames", str(sizes.max_frames),
            "--train.specaugment", "false", "--train.freq_warp", "0", "--train.warmup_steps", str(sizes.warmup_steps),
            "--train.schedule", "constant", "--train.average", "0", "--train.keep_best", "1",
            "--train.patience", "0", "--train.early_stop_metric", "dev_loss", "--train.sortagrad", "0",
            "--train.num_workers", str(sizes.num_workers), *sizes.model]


def _peak_reset(device: torch.device) -> None:
    gc.collect()  # the previous mode's model and optimiser
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None


def check_mode(name: str, work: Path, data: dict, sizes: Sizes, device: torch.device) -> dict:
    """The trainer (``asr train``) and the bare model on the same batches under one AMP mode."""
    from asr import config as config_mod
    from asr.cli import main
    from asr.data.dataset import FeatureDataset, bucket_batches
    from asr.models.acoustic import AcousticModel, AcousticModelConfig
    from asr.text import CharTokenizer
    from asr.train import TrainConfig, _amp_dtype, split_overrides

    exp = work / f"exp_{name}"
    argv = train_argv(data["train"], data["dev"], data["tokens"], exp, MODES[name], sizes, str(device), sizes.epochs)
    _peak_reset(device)
    t0 = time.time()
    rc = main(argv)
    trainer_wall = time.time() - t0
    trainer_mem = _peak_gib(device)
    if rc != 0:
        return {"mode": name, "error": f"asr train exited with {rc}"}
    rows = [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]
    timed = rows[1:] or rows
    trainer_rate = max(r["audio_sec_per_sec"] for r in timed)
    # the bare model: same config, same initial weights (asr train seeds with train.seed before building it)
    ov = split_overrides(argv[argv.index("--") + 1:])
    mcfg = config_mod.load(AcousticModelConfig, REPO / "conf/model/large.yaml", ov.get("model"))
    tcfg = config_mod.load(TrainConfig, REPO / "conf/train/gpu.yaml", ov.get("train"))
    tok = CharTokenizer()
    torch.manual_seed(tcfg.seed)
    model = AcousticModel(mcfg, 80, tok.vocab_size)
    ds = FeatureDataset(data["train"], tok, None, cache=True, subsampling=model.subsampling,
                        receptive_field=model.min_input_frames())
    plan = bucket_batches(ds.lengths, tcfg.max_frames, tcfg.max_batch, seed=tcfg.seed, epoch=sizes.epochs)
    batches = [(ds.collate(b), len(b)) for b in plan]
    audio = sum(ds.lengths[i] for b in plan for i in b) / 100.0
    amp_dtype = _amp_dtype(tcfg, device)
    model = model.to(device)
    _peak_reset(device)
    bare_epoch(copy.deepcopy(model), batches, device, tcfg, amp_dtype)  # warm-up (cuDNN autotuning)
    bare = min(bare_epoch(copy.deepcopy(model), batches, device, tcfg, amp_dtype)[0] for _ in range(2))
    bare_mem = _peak_gib(device)
    del batches, model
    bare_rate = audio / bare
    losses = [r["train_loss"] for r in rows]
    return {"mode": name, "amp": MODES[name], "epochs": len(rows), "batches_per_epoch": len(plan),
            "audio_seconds_per_epoch": round(audio, 1),
            "trainer_audio_sec_per_sec": round(trainer_rate, 1), "bare_audio_sec_per_sec": round(bare_rate, 1),
            "ratio": round(trainer_rate / bare_rate, 3), "train_loss": [round(x, 4) for x in losses],
            "loss_fell": all(map(math.isfinite, losses)) and losses[-1] < losses[0],
            "trainer_peak_gib": trainer_mem, "bare_peak_gib": bare_mem, "trainer_wall_seconds": round(trainer_wall, 1)}


def _subset(src: Path, dst: Path, n: int) -> Path:
    """The first ``n`` utterances of a synthetic data dir (its feature files are shared)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("feats.scp", "text", "utt2num_frames"):
        lines = (src / name).read_text().splitlines()
        (dst / name).write_text("\n".join(lines[:n] if n else lines) + "\n")
    return dst


def run_ddp(work: Path, data: dict, sizes: Sizes, device: torch.device, timeout: float) -> dict:
    """``asr train`` under ``torchrun --standalone --nproc_per_node 2``: NCCL first on CUDA; where it
    refuses (two ranks on one GPU), the same DDP path over gloo."""
    train = _subset(data["train"], work / "ddp_train", sizes.ddp_utts)
    attempts = [None, "gloo"] if device.type == "cuda" else [None]
    out: dict = {"attempts": []}
    for backend in attempts:
        exp = work / f"exp_ddp_{backend or 'default'}"
        env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                   OMP_NUM_THREADS="1")
        env.pop("ASR_DDP_BACKEND", None)
        if backend:
            env["ASR_DDP_BACKEND"] = backend
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "asr.cli",
               *train_argv(train, data["dev"], data["tokens"], exp, "bf16" if device.type == "cuda" else "off",
                           sizes, "cuda" if device.type == "cuda" else "cpu", 1)]
        t0 = time.time()
        # NCCL refuses two ranks on one GPU at once; should it hang instead, half the time left ends it
        limit = timeout / 2 if backend is None and device.type == "cuda" else timeout
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=work,
                                start_new_session=True)  # own process group: a timeout ends the workers too
        try:
            output, _ = proc.communicate(timeout=limit)
            rc, tail = proc.returncode, output[-1500:]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            rc, tail = -1, f"timed out after {limit:.0f} s: {output[-1000:]}"
        log = (exp / "train.log").read_text() if (exp / "train.log").is_file() else ""
        ok = rc == 0 and (exp / "checkpoints" / "last.pt").is_file() and "2 processes (DDP)" in log
        used = backend or ("nccl" if device.type == "cuda" else "gloo")
        out["attempts"].append({"backend": used, "ok": ok, "seconds": round(time.time() - t0, 1),
                                **({} if ok else {"rc": rc, "output_tail": tail})})
        if ok:
            out.update(ok=True, backend=used)
            return out
    out["ok"] = False
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dry-run", action="store_true", help="tiny sizes on CPU (what CI runs)")
    p.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    p.add_argument("--modes", default="fp32,bf16,fp16", help="comma-separated subset of fp32,bf16,fp16")
    p.add_argument("--utts", type=int, default=None, help="training utterances (default: 4800; dry run 12)")
    p.add_argument("--max-frames", type=int, default=None, help="batch size in frames (default: 160000)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per mode, the first a warm-up (default 3)")
    p.add_argument("--no-ddp", action="store_true", help="skip the 2-process torchrun run")
    p.add_argument("--budget-minutes", type=float, default=8.0, help="FAIL if the whole check takes longer")
    p.add_argument("--json", default=None, help="also write every figure to this JSON file")
    a = p.parse_args()
    t_start = time.time()
    sizes = DRY if a.dry_run else FULL
    sizes = replace(sizes, **{k: v for k, v in (("utts", a.utts), ("max_frames", a.max_frames),
                                                ("epochs", a.epochs)) if v is not None})
    device = torch.device(a.device or ("cpu" if a.dry_run else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here; run with --dry-run for the CPU version", file=sys.stderr)
        return 2
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        print(f"gpu_check: unknown mode(s) {bad}; use fp32, bf16, fp16", file=sys.stderr)
        return 2
    if device.type == "cpu":
        torch.set_num_threads(1)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"gpu_check on {gpu} ({device}), torch {torch.__version__}"
          + (f", CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}" if device.type == "cuda" else "")
          + (" [dry run: tiny sizes]" if a.dry_run else ""), flush=True)
    results: dict = {"device": str(device), "gpu": gpu, "torch": torch.__version__, "dry_run": a.dry_run,
                     "sizes": sizes.__dict__, "modes": {}}
    with tempfile.TemporaryDirectory(prefix="asr_gpu_check_") as tmp:
        work = Path(tmp)
        from asr.text import CharTokenizer

        t0 = time.time()
        data = {"train": make_data(work / "train", sizes.utts, seed=0),
                "dev": make_data(work / "dev", sizes.dev_utts, seed=1), "tokens": work / "tokens.txt"}
        CharTokenizer().save(data["tokens"])
        print(f"synthetic corpus: {sizes.utts} train / {sizes.dev_utts} dev utterances in {time.time() - t0:.1f} s",
              flush=True)
        for m in modes:
            r = check_mode(m, work, data, sizes, device)
            results["modes"][m] = r
            if "error" in r:
                print(f"{m}: {r['error']}", flush=True)
                continue
            mem = (f", peak GPU memory {r['trainer_peak_gib']} GiB (bare {r['bare_peak_gib']} GiB)"
                   if device.type == "cuda" else "")
            print(f"{m:5s}: trainer {r['trainer_audio_sec_per_sec']:9.1f} s audio/s, bare {r['bare_audio_sec_per_sec']:9.1f}"
                  f" s audio/s, ratio {100 * r['ratio']:5.1f} %{mem}, loss {r['train_loss'][0]:.3f} -> "
                  f"{r['train_loss'][-1]:.3f} over {r['epochs']} epochs of {r['batches_per_epoch']} batches", flush=True)
        if not a.no_ddp:
            left = a.budget_minutes * 60 - (time.time() - t_start)
            results["ddp"] = run_ddp(work, data, sizes, device, timeout=max(60.0, left))
            for att in results["ddp"]["attempts"]:
                print(f"ddp  : 2 processes, {att['backend']}: {'finished' if att['ok'] else 'failed'} in "
                      f"{att['seconds']} s" + ("" if att["ok"] else f"\n{att['output_tail']}"), flush=True)
    total = time.time() - t_start
    results["seconds"] = round(total, 1)
    lines = []
    for m in modes:
        r = results["modes"][m]
        if "error" in r:
            lines.append(f"FAIL {m}: {r['error']}")
            continue
        speed = f"trainer {100 * r['ratio']:.1f} % of bare (goal >= {100 * GOAL:.0f} %)"
        speed_ok = a.dry_run or r["ratio"] >= GOAL
        if a.dry_run:
            speed += " [not judged in a dry run]"
        ok = speed_ok and r["loss_fell"]
        lines.append(f"{'PASS' if ok else 'FAIL'} {m}: {speed}, loss "
                     f"{'fell' if r['loss_fell'] else 'did NOT fall'} ({r['train_loss'][0]:.3f} -> {r['train_loss'][-1]:.3f})")
    if "ddp" in results:
        d = results["ddp"]
        tried = ", ".join(f"{x['backend']} {'ok' if x['ok'] else 'failed'}" for x in d["attempts"])
        lines.append(f"{'PASS' if d['ok'] else 'FAIL'} ddp: torchrun 2 processes on one {'GPU' if device.type == 'cuda' else 'CPU'}"
                     f" ({tried})")
    lines.append(f"{'PASS' if total <= a.budget_minutes * 60 else 'FAIL'} time: {total / 60:.1f} min "
                 f"(limit {a.budget_minutes:g})")
    results["verdicts"] = lines
    print("\n".join(lines))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0 if all(line.startswith("PASS") for line in lines) else 1


if __name__ == "__main__":
    raise SystemExit(main())
