"""Acoustic-model training: learning, resume after SIGKILL, DDP on CPU, checkpoints, plots."""
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


def _history(exp: Path) -> list[dict]:
    return [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]


def test_model_learns_and_recognises_training_utterance(tiny_model):
    import asr

    hist = _history(tiny_model["exp"])
    assert hist[-1]["train_loss"] < 0.3 * hist[0]["train_loss"], "training loss did not fall"
    assert (tiny_model["exp"] / "training_curves.png").stat().st_size > 1000
    assert (tiny_model["exp"] / "train.log").read_text().count("epoch=") >= 60
    m = asr.load_model(tiny_model["package"])
    wav = sorted((tiny_model["train"] / "wav").glob("*u3.wav"))[0]  # "stop now"
    assert m.transcribe(wav) == "stop now"


def test_checkpoints_best_n_and_average(tiny_model):
    ck = tiny_model["exp"] / "checkpoints"
    kept = sorted(p.name for p in ck.glob("epoch_*.pt"))
    assert 3 <= len(kept) <= 4  # best 3 + newest
    assert (ck / "avg_best3.pt").is_file() and (ck / "last.pt").is_file()
    best = json.loads((ck / "best.json").read_text())
    assert len(best) == 3
    st = torch.load(ck / "avg_best3.pt", weights_only=True)
    parts = [torch.load(ck / f"epoch_{int(e):04d}.pt", weights_only=True)["model"] for e in best]
    k = "head.weight"
    assert torch.allclose(st["model"][k], sum(p[k] for p in parts) / 3, atol=1e-6)


def _cli(args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "asr.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


@pytest.mark.slow
def test_resume_after_sigkill_gives_same_result(tiny, tmp_path):
    epochs = 6
    ref = tmp_path / "ref"
    p = _cli(train_args(tiny, ref, epochs))
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out
    killed = tmp_path / "killed"
    p = _cli(train_args(tiny, killed, epochs))
    ck = killed / "checkpoints" / "epoch_0003.pt"
    t0 = time.time()
    while not ck.exists() and p.poll() is None and time.time() - t0 < 300:
        time.sleep(0.05)
    assert p.poll() is None, "training finished before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.wait()
    # a kill can leave a temp file mid-write, never a damaged checkpoint under its final name
    for f in (killed / "checkpoints").glob("*.pt"):
        if ".tmp-" not in f.name:
            torch.load(f, weights_only=True)
    p = _cli(train_args(tiny, killed, epochs))
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out
    assert "resumed from" in out
    h_ref, h_res = _history(ref), _history(killed)
    assert [h["epoch"] for h in h_res] == list(range(1, epochs + 1))
    np.testing.assert_allclose([h["train_loss"] for h in h_res], [h["train_loss"] for h in h_ref], rtol=1e-5)
    a = torch.load(ref / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    # no temp file left behind by the kill
    assert not [x for x in (killed / "checkpoints").iterdir() if ".tmp-" in x.name]


@pytest.mark.slow
def test_ddp_two_processes_on_cpu_matches_single_process(tiny, tmp_path):
    """torchrun --nproc_per_node 2 (gloo) gives the same loss trajectory as one process."""
    epochs = 3
    # max_batch 4 makes every global batch splittable over 2 ranks
    # packed sequences: each utterance's output is independent of how the batch is split and padded
    extra = ["--train.max_batch", "4", "--train.average", "0", "--train.pack_sequences", "always"]
    single = tmp_path / "single"
    p = _cli(train_args(tiny, single, epochs, extra))
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out
    ddp = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "asr.cli", *train_args(tiny, ddp, epochs, extra)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "2 processes (DDP)" in (ddp / "train.log").read_text()
    h1, h2 = _history(single), _history(ddp)
    np.testing.assert_allclose([h["train_loss"] for h in h2], [h["train_loss"] for h in h1], rtol=2e-3)
    np.testing.assert_allclose([h["dev_loss"] for h in h2], [h["dev_loss"] for h in h1], rtol=2e-3)


def test_bad_override_and_corrupt_checkpoint_give_clear_errors(tiny, tmp_path, capsys):
    from asr.cli import main

    assert main(train_args(tiny, tmp_path / "e", 1, ["--model.hiden", "3"])) == 1
    assert "unknown key(s) ['hiden']" in capsys.readouterr().err
    exp = tmp_path / "corrupt"
    (exp / "checkpoints").mkdir(parents=True)
    (exp / "checkpoints" / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    assert main(train_args(tiny, exp, 1)) == 1
    err = capsys.readouterr().err
    assert "last.pt" in err and "corrupt" in err


def test_specaugment_settings_are_checked():
    from asr import config as config_mod
    from asr.errors import ConfigError
    from asr.train import TrainConfig

    cfg = config_mod.from_dict(TrainConfig, {"specaug_freq_width": 15, "specaug_time_ratio": 0.1})
    assert (cfg.specaug_freq_width, cfg.specaug_time_ratio) == (15, 0.1)
    with pytest.raises(ConfigError, match="cpu.yaml: specaug_freq_width: must be >= 0"):
        config_mod.from_dict(TrainConfig, {"specaug_freq_width": -3}, source="cpu.yaml")
    with pytest.raises(ConfigError, match="specaug_time_ratio"):
        config_mod.from_dict(TrainConfig, {"specaug_time_ratio": 1.5})


def test_freq_warp_changes_training_and_needs_a_frequency_axis(tiny, tmp_path, capsys):
    """--train.freq_warp (VTLP) warps the training batches: same seed, other losses; and it refuses
    features with no filter frequencies to warp."""
    import shutil

    from asr.cli import main

    losses = {}
    for name, extra in (("plain", []), ("warp", ["--train.freq_warp", "0.15"])):
        exp = tmp_path / name
        assert main(train_args(tiny, exp, 2, ["--train.average", "0", *extra])) == 0
        losses[name] = [h["train_loss"] for h in _history(exp)]
        assert all(np.isfinite(losses[name]))
    assert "freq_warp: 0.15" in (tmp_path / "warp" / "train.yaml").read_text()
    assert losses["plain"][0] != pytest.approx(losses["warp"][0], rel=1e-4)
    # MFCC features (a copy of the data dir whose feats.yaml says mfcc) and a missing feats.yaml
    bad = tmp_path / "mfcc_train"
    shutil.copytree(tiny["train"], bad)
    (bad / "feats.yaml").write_text((bad / "feats.yaml").read_text().replace("kind: fbank", "kind: mfcc"))
    args = train_args({**tiny, "train": bad}, tmp_path / "e1", 1, ["--train.freq_warp", "0.1"])
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "freq_warp" in err and "cepstral" in err and str(bad) in err
    (bad / "feats.yaml").unlink()
    assert main(args) == 1
    assert "feats.yaml is missing" in capsys.readouterr().err
