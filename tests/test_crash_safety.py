"""Crash safety: feature extraction, training and decoding killed with SIGKILL at a random (seeded)
point, then run again, end with exactly what an uninterrupted run writes, and leave no temporary
or corrupt file behind.

The uninterrupted reference runs in this process (``asr.cli.main``); the killed run is a real
``python -m asr.cli`` subprocess; the rerun after the kill runs in this process again. Files a
kill may leave must be either absent or complete at every moment (they are written atomically);
the rerun must remove the killed writer's temporaries and finish the job.

(``tests/test_ddp_c10d.py`` kills a DDP worker right after an epoch checkpoint appears; here the
kill lands anywhere inside an epoch, checkpoint writing included, and the best-N average is
compared too. The random kill cannot be sure to hit each point of the epoch-end
sequence, so a second training test ends the trainer at every named point in turn, through the
trainer's ``ASR_TEST_KILL_AT`` hook.)
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.checkpoint import load_checkpoint
from asr.cli import main
from asr.train import EPOCH_KILL_POINTS, FINISH_KILL_POINTS, KILLED_EXIT_CODE
from speech import REPO, train_args

SEED = int(os.environ.get("ASR_CRASH_SEED", "7"))  # another seed: other kill points
N_UTTS = 60
EPOCHS = 5


def _spawn(args: list, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as f:
        p = subprocess.Popen([sys.executable, "-m", "asr.cli", *map(str, args)], cwd=REPO, env=env,
                             stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    p.log = log
    return p


def _kill_when(p: subprocess.Popen, ready, extra_delay: float, timeout: float = 120.0) -> None:
    """SIGKILL ``p`` (and its process group) ``extra_delay`` seconds after ``ready()`` turns true."""
    t0 = time.time()
    while not ready():
        if p.poll() is not None:
            pytest.fail(f"the process ended before the kill point (rc {p.returncode}): {p.log.read_text()[-2000:]}")
        assert time.time() - t0 < timeout, "kill point not reached"
        time.sleep(0.01)
    time.sleep(extra_delay)
    if p.poll() is not None:
        pytest.skip("the process finished before the random kill point (machine too fast for this seed)")
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()


def _temps(*dirs: Path) -> list[Path]:
    return [p for d in dirs for p in d.rglob(".*.tmp-*")]


@pytest.fixture(scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # the subprocesses run with one thread; keep float results identical
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    """60 utterances of 2-4 s (noise), enough work for a kill to land in the middle."""
    d = tmp_path_factory.mktemp("crash_audio") / "data"
    (d / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    utts = [f"u{i:03d}" for i in range(N_UTTS)]
    for i, u in enumerate(utts):
        x = 0.1 * rng.standard_normal(16000 * (2 + i % 3))
        sf.write(d / "wav" / f"{u}.wav", x.astype(np.float32), 16000, subtype="PCM_16")
    (d / "wav.scp").write_text("".join(f"{u} {d / 'wav' / u}.wav\n" for u in utts))
    (d / "utt2spk").write_text("".join(f"{u} spk\n" for u in utts))
    return d


def _copy_datadir(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in ("wav.scp", "utt2spk"):
        shutil.copyfile(src / name, dst / name)
    return dst


# ---------------------------------------------------------------------------------------------


def test_extract_features_killed_and_rerun_equals_uninterrupted(audio_dir, one_thread, tmp_path):
    rng = random.Random(SEED)

    def args(root: Path) -> list:
        return ["extract-features", "--data", root / "data", "--dump", root / "dump",
                "--cmvn-out", root / "data" / "cmvn.npz", "--no-progress"]

    ref, run = tmp_path / "ref", tmp_path / "run"
    for root in (ref, run):
        _copy_datadir(audio_dir, root / "data")
    assert main([str(a) for a in args(ref)]) == 0

    k = rng.randint(5, N_UTTS - 5)
    p = _spawn(args(run), tmp_path / "killed.log")
    _kill_when(p, lambda: len(list((run / "dump").glob("*.npy"))) >= k, rng.uniform(0, 0.05))

    # after the kill: every visible file is complete (equal to the reference), or absent
    done = sorted(p.name for p in (run / "dump").glob("*.npy"))
    assert 0 < len(done) <= N_UTTS
    for name in done:
        assert (run / "dump" / name).read_bytes() == (ref / "dump" / name).read_bytes(), name
    for name in ("feats.scp", "utt2num_frames", "feats.yaml"):  # written after the last .npy
        if (run / "data" / name).exists():
            a = (ref / "data" / name).read_text().replace(str(ref), "ROOT")
            assert (run / "data" / name).read_text().replace(str(run), "ROOT") == a, name

    assert main([str(a) for a in args(run)]) == 0
    assert not _temps(run)
    names = sorted(p.name for p in (ref / "dump").glob("*.npy"))
    assert names == sorted(p.name for p in (run / "dump").glob("*.npy")) and len(names) == N_UTTS
    for name in names:
        assert (run / "dump" / name).read_bytes() == (ref / "dump" / name).read_bytes(), name
    for name in ("feats.scp", "utt2num_frames", "feats.yaml"):
        a = (ref / "data" / name).read_text().replace(str(ref), "ROOT")
        assert (run / "data" / name).read_text().replace(str(run), "ROOT") == a, name
    with np.load(ref / "data" / "cmvn.npz") as a, np.load(run / "data" / "cmvn.npz") as b:
        for key in ("mean", "std", "count"):
            np.testing.assert_array_equal(a[key], b[key])


# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tiny, one_thread, tmp_path_factory):
    """An uninterrupted reference training run (in this process) and its model package."""
    exp = tmp_path_factory.mktemp("crash_train") / "ref"
    assert main(train_args(tiny, exp, EPOCHS)) == 0
    pkg = exp.parent / "model"
    assert main(["package", "--exp", str(exp), "--out", str(pkg)]) == 0
    return {"exp": exp, "package": pkg}


def _check_checkpoints_complete(ckpt: Path) -> None:
    for f in ckpt.glob("*.pt"):
        load_checkpoint(f)  # raises CheckpointError on a partial file
    if (ckpt / "best.json").exists():
        json.loads((ckpt / "best.json").read_text())


def _epoch_lines(exp: Path) -> list[str]:
    """train.log's epoch lines without the time stamp and the timings."""
    lines = [line.split(" ", 2)[2] for line in (exp / "train.log").read_text().splitlines() if " epoch=" in line]
    return [re.sub(r" (train_seconds|audio_sec_per_sec)=\S+", "", line) for line in lines]


def _assert_same_run(ref: Path, run: Path, epochs: int) -> None:
    """``run`` (killed, then resumed) ended with what the uninterrupted ``ref`` wrote."""
    assert not _temps(run)
    _check_checkpoints_complete(run / "checkpoints")
    h_ref = [json.loads(x) for x in (ref / "metrics.jsonl").read_text().splitlines()]
    h_run = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in h_run] == list(range(1, epochs + 1))
    for key in ("train_loss", "dev_loss"):
        np.testing.assert_allclose([h[key] for h in h_run], [h[key] for h in h_ref], rtol=1e-5, err_msg=key)
    assert _epoch_lines(run) == _epoch_lines(ref)  # each epoch logged once, with the same figures
    ck_ref, ck_run = ref / "checkpoints", run / "checkpoints"
    assert json.loads((ck_run / "best.json").read_text()).keys() == json.loads((ck_ref / "best.json").read_text()).keys()
    assert sorted(p.name for p in ck_run.glob("*.pt")) == sorted(p.name for p in ck_ref.glob("*.pt"))
    avg_ref, avg_run = (json.loads((d / "average.json").read_text()) for d in (ref, run))
    assert (avg_run["k"], avg_run["epochs"], avg_run["checkpoint"]) == (avg_ref["k"], avg_ref["epochs"], avg_ref["checkpoint"])
    for name in ("checkpoints/last.pt", avg_ref["checkpoint"]):
        a, b = load_checkpoint(ref / name)["model"], load_checkpoint(run / name)["model"]
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=f"{name}: {key}")


def test_training_killed_inside_an_epoch_and_resumed_equals_uninterrupted(tiny, trained, tmp_path):
    rng = random.Random(SEED)
    ref, run = trained["exp"], tmp_path / "run"
    k = rng.randint(1, EPOCHS - 2)
    p = _spawn(train_args(tiny, run, EPOCHS), tmp_path / "killed.log")
    # somewhere inside epoch k+1: training, dev evaluation or writing its checkpoints (a busy machine
    # can delay the kill by epochs: each takes well under a second)
    _kill_when(p, lambda: (run / "checkpoints" / f"epoch_{k:04d}.pt").exists(), rng.uniform(0, 0.25))
    _check_checkpoints_complete(run / "checkpoints")
    if (run / "metrics.jsonl").exists():
        [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert not list((run / "checkpoints").glob("avg_best*.pt"))
    # killed before the first last.pt was complete: the rerun starts again from scratch
    resumable = (run / "checkpoints" / "last.pt").exists()

    assert main(train_args(tiny, run, EPOCHS)) == 0
    assert ("resumed from" in (run / "train.log").read_text()) == resumable
    _assert_same_run(ref, run, EPOCHS)


KILL_EPOCHS = 3
# every point of the epoch-end sequence in a middle epoch (the resumed run trains on); in the last
# epoch the points from last.pt on (the resumed run only finishes; a kill before last.pt of the last
# epoch retrains it from the previous last.pt, as in a middle epoch); the points of the final
# average; and a kill at the first epoch's checkpoint file (no last.pt yet: the rerun starts again
# from scratch beside that file)
_FINAL_EPOCH_POINTS = EPOCH_KILL_POINTS[EPOCH_KILL_POINTS.index("last_pt"):]
KILLS = ([f"{p}:2" for p in EPOCH_KILL_POINTS] + [f"{p}:{KILL_EPOCHS}" for p in _FINAL_EPOCH_POINTS]
         + list(FINISH_KILL_POINTS) + ["epoch_file:1"])


@pytest.fixture(scope="module")
def trained_short(tiny, one_thread, tmp_path_factory):
    exp = tmp_path_factory.mktemp("crash_points") / "ref"
    assert main(train_args(tiny, exp, KILL_EPOCHS)) == 0
    return exp


@pytest.mark.parametrize("kill_at", KILLS)
def test_training_killed_at_each_point_of_the_epoch_end_and_resumed_equals_uninterrupted(
        tiny, trained_short, tmp_path, kill_at):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ASR_TEST_KILL_AT": kill_at}
    r = subprocess.run([sys.executable, "-m", "asr.cli", *train_args(tiny, run, KILL_EPOCHS)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == KILLED_EXIT_CODE, f"the kill point {kill_at} was not reached: {r.stdout[-2000:]}"
    _check_checkpoints_complete(run / "checkpoints")
    assert main(train_args(tiny, run, KILL_EPOCHS)) == 0
    assert ("resumed from" in (run / "train.log").read_text()) == (kill_at != "epoch_file:1")
    _assert_same_run(trained_short, run, KILL_EPOCHS)


def test_kill_between_last_checkpoint_and_best_json_is_repaired_on_resume(tiny, trained, tmp_path):
    """The one window inside checkpoint writing that atomic files alone do not cover: last.pt of the
    final epoch is written but best.json does not list that epoch yet (and no average exists)."""
    run = tmp_path / "run"
    shutil.copytree(trained["exp"], run)
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert str(EPOCHS) in best, "the last epoch should be among the best 3 for this check"
    del best[str(EPOCHS)]
    (run / "checkpoints" / "best.json").write_text(json.dumps(best))
    avg = json.loads((run / "average.json").read_text())["checkpoint"]
    (run / avg).unlink()
    (run / "average.json").unlink()
    assert main(train_args(tiny, run, EPOCHS)) == 0
    ck_ref, ck_run = trained["exp"] / "checkpoints", run / "checkpoints"
    assert json.loads((ck_run / "best.json").read_text()) == json.loads((ck_ref / "best.json").read_text())
    assert json.loads((run / "average.json").read_text()) == json.loads((trained["exp"] / "average.json").read_text())
    a, b = load_checkpoint(trained["exp"] / avg)["model"], load_checkpoint(run / avg)["model"]
    for key in a:
        torch.testing.assert_close(b[key], a[key])


def test_package_rerun_replaces_what_a_killed_run_left(trained, tmp_path):
    """`asr package` builds the folder beside the target and renames it in whole; a kill leaves only
    hidden partial folders, which the next run removes."""
    out = tmp_path / "model"
    (tmp_path / ".model.tmp-999999").mkdir()  # killed while writing
    (tmp_path / ".model.tmp-999999" / "model.pt").write_bytes(b"partial")
    (tmp_path / ".model.old-999998").mkdir()  # killed between moving the old package away and the new in
    assert main(["package", "--exp", str(trained["exp"]), "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    from asr.package import check_package

    check_package(out)


# ---------------------------------------------------------------------------------------------


def test_decode_killed_and_rerun_equals_uninterrupted(trained, audio_dir, one_thread, tmp_path):
    rng = random.Random(SEED)
    data = _copy_datadir(audio_dir, tmp_path / "data")  # no features: decode computes them from audio

    def args(out: Path) -> list:
        return ["decode", "--model", trained["package"], "--data", data, "--out", out, "--nj", "3"]

    ref, run = tmp_path / "ref", tmp_path / "run"
    assert main([str(a) for a in args(ref)]) == 0
    shards = ["hyp.1", "hyp.2", "hyp.3"]
    k = rng.randint(1, 2)  # shards finished before the kill
    p = _spawn(args(run), tmp_path / "killed.log")
    _kill_when(p, lambda: (run / f"hyp.{k}").exists(), rng.uniform(0, 0.3))
    for name in shards + ["hyp"]:  # each output absent or complete
        if (run / name).exists():
            assert (run / name).read_text() == (ref / name).read_text(), name
    assert not (run / "hyp").exists() or all((run / s).exists() for s in shards)

    assert main([str(a) for a in args(run)]) == 0
    assert not _temps(run)
    for name in shards + ["hyp"]:
        assert (run / name).read_text() == (ref / name).read_text(), name
    assert len((run / "hyp").read_text().splitlines()) == N_UTTS
