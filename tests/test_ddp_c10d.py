"""Multi-node as users launch it: two torchrun agents ("nodes", one process each, gloo on CPU) meet
through the c10d rendezvous (``--rdzv_backend c10d --rdzv_endpoint HOST:PORT``, as under Slurm or a
Kubernetes PyTorchJob) and train through ``asr train``; the run follows the same trajectory as the
single-node ``--standalone --nproc_per_node 2`` run of the same config."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speech import REPO, needs_espeak, train_args

pytestmark = [needs_espeak, pytest.mark.slow]
EPOCHS = 2
EXTRA = ["--train.max_batch", "4", "--train.average", "0"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(launcher: list[str], tiny, exp: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("ASR_DDP_BACKEND", None)
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "asr.cli",
                             *train_args(tiny, exp, EPOCHS, EXTRA)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _history(exp: Path) -> list[dict]:
    return [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]


def test_two_nodes_through_c10d_rendezvous_match_one_node(tiny, tmp_path):
    port = _free_port()
    two_nodes = tmp_path / "c10d"
    node = ["--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d",
            "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "asr-test", "--max_restarts", "0"]
    agents = [_launch(node, tiny, two_nodes) for _ in range(2)]  # the same command on each "node"
    outs = [a.communicate(timeout=600)[0] for a in agents]
    assert [a.returncode for a in agents] == [0, 0], "\n".join(o[-3000:] for o in outs)
    log = (two_nodes / "train.log").read_text()
    assert "2 processes (DDP)" in log
    one_node = tmp_path / "standalone"
    p = _launch(["--standalone", "--nproc_per_node", "2"], tiny, one_node)
    out = p.communicate(timeout=600)[0]
    assert p.returncode == 0, out[-3000:]
    a, b = _history(two_nodes), _history(one_node)
    assert len(a) == len(b) == EPOCHS
    for ra, rb in zip(a, b):
        assert ra["step"] == rb["step"]
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-5)
        assert ra["dev_loss"] == pytest.approx(rb["dev_loss"], rel=1e-5)
    wa = torch.load(two_nodes / "checkpoints" / "last.pt", weights_only=False)["model"]
    wb = torch.load(one_node / "checkpoints" / "last.pt", weights_only=False)["model"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-5, rtol=1e-4)
