"""2-process torchrun (gloo) DDP training killed with SIGKILL after an epoch checkpoint and started
again ends with the same history and weights as an uninterrupted 2-process run (dropout and
SpecAugment on, so every rank's random streams must continue where they stopped)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from speech import REPO, train_args

EPOCHS = 4
# max_batch 4: every global batch splits over 2 ranks; dropout + SpecAugment use each rank's RNG
EXTRA = ["--train.max_batch", "4", "--train.average", "0", "--train.specaugment", "true", "--model.dropout", "0.2",
         "--model.layers", "2"]


def _torchrun(tiny, exp: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "asr.cli", *train_args(tiny, exp, EPOCHS, EXTRA)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # own process group: the kill takes the workers too


def _history(exp: Path) -> list[dict]:
    return [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_ddp_resume_after_sigkill_matches_uninterrupted(tiny, tmp_path):
    ref = tmp_path / "ref"
    p = _torchrun(tiny, ref)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out[-3000:]

    killed = tmp_path / "killed"
    p = _torchrun(tiny, killed)
    ck = killed / "checkpoints" / "epoch_0002.pt"
    t0 = time.time()
    while not ck.exists() and p.poll() is None and time.time() - t0 < 300:
        time.sleep(0.05)
    assert p.poll() is None, "training finished before it could be killed"
    os.killpg(p.pid, signal.SIGKILL)  # the launcher and both ranks, like a lost node
    p.wait()
    assert len(_history(killed)) < EPOCHS

    p = _torchrun(tiny, killed)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out[-3000:]
    log = (killed / "train.log").read_text()
    assert "resumed from" in log and "2 processes (DDP)" in log
    h_ref, h_res = _history(ref), _history(killed)
    assert [h["epoch"] for h in h_res] == list(range(1, EPOCHS + 1))
    for key in ("train_loss", "dev_loss"):
        np.testing.assert_allclose([h[key] for h in h_res], [h[key] for h in h_ref], rtol=1e-5, err_msg=key)
    a = torch.load(ref / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)
    assert len(b["rng_ranks"]) == 2
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
