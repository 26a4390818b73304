"""Multi-node as users launch it, through the recipe's stage 3: two torchrun agents ("nodes", one
process each, gloo on CPU) meet through the c10d rendezvous (``./run.sh --stage 3 --nnodes 2
--rdzv_endpoint HOST:PORT``, the same command on each node, as under Slurm or a Kubernetes PyTorchJob).
One node's worker is killed after the first epoch's checkpoint; with ``--max_restarts 1`` the agents
meet again, restart both workers, ``asr train`` resumes from ``checkpoints/last.pt``, and the run ends
where the uninterrupted single-node ``--nproc_per_node 2`` run of the same stage ends, epoch by epoch
(dropout and SpecAugment on: every rank's random streams continue where they stopped)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import torch

from speech import copy_recipes, needs_espeak, recipe_env, repo_pythonpath

pytestmark = [needs_espeak, pytest.mark.slow]
EPOCHS = 4
# max_batch 2: every global batch splits over the 2 ranks; dropout and SpecAugment draw from each rank's
# RNG, so the resumed ranks must continue their random streams where the checkpoint left them
TRAIN_ARGS = ("--train.epochs 4 --train.max_batch 2 --train.max_frames 700 --train.average 0 --train.threads 1 "
              "--train.patience 0 --train.specaugment true --train.schedule constant --train.warmup_steps 5 "
              "--model.hidden 32 --model.layers 2 --model.conv_channels 8 --model.dropout 0.2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def recipe(tiny, tmp_path_factory) -> Path:
    """A copy of recipes/kaldi_datadir with the tiny corpus through stages 0-2 (features dumped)."""
    r = copy_recipes(tmp_path_factory.mktemp("repo"), "kaldi_datadir") / "kaldi_datadir"
    p = _run(r, "--train_dir", str(tiny["train"]), "--dev_dir", str(tiny["dev"]), "--test_dirs", str(tiny["dev"]),
             "--speed_perturb", "false", "--train_conf", "../../conf/train/cpu.yaml", "--nj", "1", "--stop_stage", "2")
    assert p.wait(timeout=600) == 0, p.stdout.read()[-3000:]
    return r


def _run(recipe: Path, *args: str) -> subprocess.Popen:
    env = recipe_env(OMP_NUM_THREADS="1", PYTHONPATH=repo_pythonpath())
    env.pop("ASR_DDP_BACKEND", None)
    return subprocess.Popen(["bash", str(recipe / "run.sh"), *args], cwd=recipe, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stage3(recipe: Path, am_exp: str, *args: str) -> subprocess.Popen:
    return _run(recipe, "--stage", "3", "--stop_stage", "3", "--speed_perturb", "false",
                "--model_conf", "../../conf/model/small.yaml",
                "--train_conf", "../../conf/train/cpu.yaml", "--am_exp", am_exp, "--train_args", TRAIN_ARGS, *args)


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below ``pid``."""
    out, todo = [], [pid]
    while todo:
        r = subprocess.run(["pgrep", "-P", str(todo.pop())], capture_output=True, text=True)
        for child in map(int, r.stdout.split()):
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except FileNotFoundError:
                continue
            out.append((child, cmd))
            todo.append(child)
    return out


def _history(exp: Path) -> list[dict]:
    return [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]


def test_two_nodes_through_the_recipe_survive_a_killed_rank_and_match_one_node(recipe):
    port = _free_port()
    nodes = ["--nnodes", "2", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "asr-test", "--max_restarts", "1"]
    runs = [_stage3(recipe, "exp/c10d", *nodes) for _ in range(2)]  # the same command on each "node"
    exp = recipe / "exp" / "c10d"
    ck = exp / "checkpoints" / "epoch_0001.pt"
    t0 = time.time()
    while not ck.is_file() and time.time() - t0 < 300 and all(r.poll() is None for r in runs):
        time.sleep(0.02)
    assert ck.is_file(), "\n".join(r.stdout.read()[-3000:] for r in runs if r.poll() is not None)
    workers = [pid for pid, cmd in _descendants(runs[1].pid) if "asr.cli train" in cmd and "distributed.run" not in cmd]
    assert len(workers) == 1, _descendants(runs[1].pid)
    os.kill(workers[0], signal.SIGKILL)  # a lost worker: its agent (the "node") survives and restarts the group
    outs = [r.communicate(timeout=600)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], "\n".join(o[-3000:] for o in outs)
    assert "--rdzv_backend c10d" in outs[0] and "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in outs[0]
    log = (exp / "train.log").read_text()
    assert "2 processes (DDP)" in log
    resumed = [line for line in log.splitlines() if "resumed from" in line]
    assert len(resumed) == 1 and f"(epoch {EPOCHS}," not in resumed[0], log[-2000:]
    assert (exp / ".done").is_file()

    clean = _stage3(recipe, "exp/standalone", "--nproc_per_node", "2")
    out = clean.communicate(timeout=600)[0]
    assert clean.returncode == 0, out[-3000:]
    assert "--standalone" in out
    a, b = _history(exp), _history(recipe / "exp" / "standalone")
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b] == list(range(1, EPOCHS + 1))
    for ra, rb in zip(a, b):
        assert ra["step"] == rb["step"]
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-5)
        assert ra["dev_loss"] == pytest.approx(rb["dev_loss"], rel=1e-5)
    wa = torch.load(exp / "checkpoints" / "last.pt", weights_only=False)["model"]
    wb = torch.load(recipe / "exp" / "standalone" / "checkpoints" / "last.pt", weights_only=False)["model"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-5, rtol=1e-4)


def test_multinode_stage3_needs_an_endpoint_and_never_moves_another_nodes_run(recipe):
    p = _stage3(recipe, "exp/nowhere", "--nnodes", "2")
    out = p.communicate(timeout=120)[0]
    assert p.returncode != 0 and "needs --rdzv_endpoint HOST:PORT" in out
    other = recipe / "exp" / "other"
    other.mkdir(parents=True)
    (other / ".params").write_text("trained with something else\n")
    p = _stage3(recipe, "exp/other", "--nnodes", "2", "--rdzv_endpoint", "127.0.0.1:1")
    out = p.communicate(timeout=120)[0]
    assert p.returncode != 0 and "move it away before a multi-node stage 3" in out
    assert (other / ".params").read_text() == "trained with something else\n"
