#!/usr/bin/env python3
"""Trainer throughput vs the bare model: seconds of audio per second, data-loading wait, ratio.

    python tools/bench/train_throughput.py [--model-conf conf/model/small.yaml] [--utts 96]
        [--device auto] [--threads 2] [--max-frames 12000] [--repeats 2] [--cache true|false]

Builds a synthetic dumped-feature data dir (random 80-dim features of 2-12 s utterances with random
character transcripts; the content does not change the timings), then times, on the SAME batches
(the trainer's own length-bucketed plan for one epoch):

- **bare**: collate everything first, then for each batch model forward + CTC loss + backward +
  optimiser step (no data loading, no logging, nothing else);
- **trainer**: ``asr.train.fit`` for two epochs; the second epoch's training loop is timed (data
  loading, AMP, clipping, LR schedule, progress bar; the dev pass and checkpoint writing are
  excluded), with the time spent collating batches inside the loop reported as the **wait fraction**
  (time the training step waited for a batch / loop time). With ``cache_features: true`` (CPU config)
  the second epoch reads features from RAM; ``--cache false`` measures loading from disk every epoch.

Rounds of (bare, trainer) alternate, so other load on a shared machine hits both; the first round
is a warm-up, the best of ``--repeats`` rounds is reported, and on CPU also the ratio of process CPU
time (less sensitive to other load). The first bare pass after other work is slow (allocator/oneDNN
warm-up), so each round runs the bare loop twice and times the second. SpecAugment is off
on both sides (the bare loop has none). On CUDA the GPU memory peak is reported too. Prints
``ratio trainer/bare`` (1.0 = the trainer adds nothing); the issue asks for >= 0.90.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from asr import config as config_mod  # noqa: E402
from asr.data.dataset import FeatureDataset, bucket_batches  # noqa: E402
from asr.models.acoustic import AcousticModel, AcousticModelConfig  # noqa: E402
from asr.text import CharTokenizer  # noqa: E402
from asr.train import CTCTask, TrainConfig, fit, lstm_mode, resolve_device  # noqa: E402

LETTERS = "abcdefghijklmnopqrstuvwxyz '"


def make_data(root: Path, n: int, dim: int = 80, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    feats, text, n2f = [], [], []
    (root / "dump").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        frames = int(rng.integers(200, 1200))
        utt = f"spk{i % 8}-u{i:05d}"
        path = root / "dump" / f"{utt}.npy"
        np.save(path, rng.standard_normal((frames, dim)).astype(np.float32))
        n_chars = max(1, frames // 12)
        chars = rng.choice(list(LETTERS[:26]) + [" "] * 5, size=n_chars)
        t = " ".join("".join(chars).split()) or "a"
        feats.append(f"{utt} {path}")
        text.append(f"{utt} {t}")
        n2f.append(f"{utt} {frames}")
    (root / "feats.scp").write_text("\n".join(feats) + "\n")
    (root / "text").write_text("\n".join(text) + "\n")
    (root / "utt2num_frames").write_text("\n".join(n2f) + "\n")
    return root


def bare_epoch(model, batches, device, cfg: TrainConfig, amp_dtype) -> tuple[float, float]:
    ctc = torch.nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)  # as the trainer: fp16 only
    model.train()
    dev_batches = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in b.items()} for b, _ in batches]
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for b in dev_batches:
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            lp, ol = model(b["feats"], b["feat_lens"], mode=lstm_mode(cfg, device))
        loss = ctc(lp.float().transpose(0, 1), b["targets"], ol, b["target_lens"]) / len(b["utts"])
        scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0


class TimedBatches:
    """Wraps a task's batch list: times the loop from its first batch request to its end, and the
    time spent waiting for the next batch (collating in-process, or for DataLoader workers)."""

    def __init__(self, batches):
        self.batches = batches
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.wait = 0.0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        t0, c0 = time.perf_counter(), time.process_time()
        it = iter(self.batches)
        while True:
            w0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                break
            self.wait += time.perf_counter() - w0
            yield item
        self.seconds = time.perf_counter() - t0
        self.cpu_seconds = time.process_time() - c0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-conf", default="conf/model/small.yaml")
    p.add_argument("--train-conf", default=None, help="default: conf/train/cpu.yaml on CPU, gpu.yaml on CUDA")
    p.add_argument("--utts", type=int, default=96)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: stable timings on a shared CPU)")
    p.add_argument("--max-frames", type=int, default=12000, help="batch size in padded frames")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--cache", default=None, choices=["true", "false"], help="override cache_features")
    p.add_argument("--num-workers", type=int, default=None, help="override num_workers")
    p.add_argument("--model", default="", help="model overrides, e.g. 'hidden=64,layers=1' (per-batch overheads show more)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    repo = Path(__file__).resolve().parents[2]
    train_conf = a.train_conf or str(repo / ("conf/train/gpu.yaml" if device.type == "cuda" else "conf/train/cpu.yaml"))
    mover = dict(kv.split("=", 1) for kv in a.model.split(",") if kv)
    mcfg = config_mod.load(AcousticModelConfig, a.model_conf if Path(a.model_conf).is_file() else repo / a.model_conf,
                           mover or None)
    over = {"max_frames": a.max_frames, "specaugment": False, "epochs": 2, "patience": 0, "average": 0,
            "keep_best": 1, "threads": a.threads, "early_stop_metric": "dev_loss", "warmup_steps": 10}
    if a.cache is not None:
        over["cache_features"] = a.cache == "true"
    if a.num_workers is not None:
        over["num_workers"] = a.num_workers
    tcfg = config_mod.load(TrainConfig, train_conf, {k: str(v) for k, v in over.items()})
    tok = CharTokenizer()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_dir = make_data(tmp / "train", a.utts)
        dev_dir = make_data(tmp / "dev", 4, seed=1)
        torch.manual_seed(0)
        model = AcousticModel(mcfg, 80, tok.vocab_size)
        rf, sub = model.min_input_frames(), model.subsampling

        def dataset(d):
            return FeatureDataset(d, tok, None, cache=tcfg.cache_features, subsampling=sub, receptive_field=rf)

        train_set = dataset(train_dir)
        audio_sec = sum(train_set.lengths) / 100.0
        # the batches of the epoch the trainer is timed on (its last)
        plan = bucket_batches(train_set.lengths, tcfg.max_frames, tcfg.max_batch, seed=tcfg.seed, epoch=tcfg.epochs)
        from asr.train import _amp_dtype

        amp_dtype = _amp_dtype(tcfg, device)
        model = model.to(device)
        batches = [(train_set.collate(b), len(b)) for b in plan]
        bare, bare_cpu, trainer, trainer_cpu, waits, mem = [], [], [], [], [], 0
        # interleaved (bare, trainer) rounds after a warm-up round: other load on the machine hits both
        for r in range(a.repeats + 1):
            bare_epoch(model, batches, device, tcfg, amp_dtype)  # the first pass after other work is slow
            w, c = bare_epoch(model, batches, device, tcfg, amp_dtype)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            ts = dataset(train_dir)
            task = CTCTask(AcousticModel(mcfg, 80, tok.vocab_size), ts, dataset(dev_dir), tcfg, tok,
                           config_mod.to_dict(mcfg))
            loops: list[TimedBatches] = []
            inner = task.train_batches

            def timed_batches(epoch, rank, world, inner=inner, loops=loops):
                loops.append(TimedBatches(inner(epoch, rank, world)))
                return loops[-1]

            task.train_batches = timed_batches
            fit(task, tcfg, tmp / f"exp{r}", device=str(device), resume=False)
            if device.type == "cuda":
                mem = max(mem, torch.cuda.max_memory_allocated())
            if r:
                bare.append(w)
                bare_cpu.append(c)
                trainer.append(loops[-1].seconds)
                trainer_cpu.append(loops[-1].cpu_seconds)
                waits.append(loops[-1].wait / max(1e-9, trainer[-1]))
    b, t = min(bare), min(trainer)
    cpu_ratio = min(bare_cpu) / min(trainer_cpu) if device.type == "cpu" else None
    res = {"device": str(device), "threads": a.threads, "model_conf": a.model_conf, "model_overrides": a.model,
           "pack_sequences": lstm_mode(tcfg, device), "utterances": a.utts,
           "audio_seconds": round(audio_sec, 1), "batches": len(plan), "cache_features": tcfg.cache_features,
           "num_workers": tcfg.num_workers,
           "bare_audio_sec_per_sec": round(audio_sec / b, 2), "trainer_audio_sec_per_sec": round(audio_sec / t, 2),
           "ratio_trainer_over_bare": round(b / t, 3),
           "cpu_time_ratio_trainer_over_bare": round(cpu_ratio, 3) if cpu_ratio else None,
           "data_wait_fraction": round(min(waits), 4) if waits else None,
           "bare_seconds": [round(x, 3) for x in bare], "trainer_seconds": [round(x, 3) for x in trainer]}
    if device.type == "cuda":
        res["gpu_peak_memory_gib"] = round(mem / 2**30, 2)
    print(f"device {res['device']} ({a.threads} threads), {a.model_conf} {a.model}, {a.utts} utts = {audio_sec:.0f} s of "
          f"audio in {len(plan)} batches")
    print(f"bare model fwd+bwd+step : {res['bare_audio_sec_per_sec']:8.1f} s audio / s")
    print(f"trainer (asr.train.fit) : {res['trainer_audio_sec_per_sec']:8.1f} s audio / s  "
          f"(data-loading wait {100 * (res['data_wait_fraction'] or 0):.1f} % of the epoch)")
    print(f"ratio trainer/bare      : {res['ratio_trainer_over_bare']:.3f} (wall clock, best of {a.repeats})")
    if cpu_ratio:
        print(f"ratio by process CPU time: {cpu_ratio:.3f} (less sensitive to other load on a shared CPU)")
    if "gpu_peak_memory_gib" in res:
        print(f"GPU peak memory         : {res['gpu_peak_memory_gib']} GiB")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
