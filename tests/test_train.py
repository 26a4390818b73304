"""Acoustic-model training: learning, resume after SIGKILL, DDP on CPU, checkpoints, plots."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import jiwer
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
    texts = {"u0": "yes", "u1": "no", "u2": "go up", "u3": "stop now"}
    hyps = {u: m.transcribe(sorted((tiny_model["train"] / "wav").glob(f"*{u}.wav"))[0]) for u in texts}
    # seconds of training: the words nearly right (an untrained or broken model has CER >= 0.9)
    assert jiwer.cer(list(texts.values()), list(hyps.values())) <= 0.15, hyps


def test_checkpoints_best_n_and_the_average_chosen_on_dev(tiny_model):
    exp = tiny_model["exp"]
    ck = exp / "checkpoints"
    kept = sorted(p.name for p in ck.glob("epoch_*.pt"))
    assert 3 <= len(kept) <= 4  # best 3 + newest
    assert (ck / "last.pt").is_file()
    best = json.loads((ck / "best.json").read_text())
    assert len(best) == 3
    ranked = [int(e) for e, _ in sorted(best.items(), key=lambda kv: kv[1])]
    # the averages of the best 1, 2, 3 epochs were evaluated on dev; the best early-stop metric won
    rec = json.loads((exp / "average.json").read_text())
    assert rec["metric"] == "dev_loss"
    assert [c["k"] for c in rec["candidates"]] == [1, 2, 3]
    assert [c["epochs"] for c in rec["candidates"]] == [ranked[:1], ranked[:2], ranked[:3]]
    assert rec["candidates"][0]["dev_loss"] == pytest.approx(best[str(ranked[0])], rel=1e-6)  # k=1: the best epoch
    losses = [c["dev_loss"] for c in rec["candidates"]]
    k = losses.index(min(losses)) + 1
    assert rec["k"] == k and rec["epochs"] == ranked[:k]
    assert [p.name for p in ck.glob("avg_best*.pt")] == [f"avg_best{k}.pt"] == [Path(rec["checkpoint"]).name]
    st = torch.load(ck / f"avg_best{k}.pt", weights_only=True)
    parts = [torch.load(ck / f"epoch_{e:04d}.pt", weights_only=True)["model"] for e in ranked[:k]]
    assert st["averaged_epochs"] == ranked[:k]
    for key in ("head.weight", "head.bias"):
        torch.testing.assert_close(st["model"][key], sum(p[key] for p in parts) / k, atol=1e-6, rtol=1e-6)
    log = (exp / "train.log").read_text()
    for c in rec["candidates"]:
        assert f"average of the best {c['k']} epoch(s) {c['epochs']}: dev_loss=" in log
    assert f"kept the average of the best {k} of 3 epochs" in log
    # the package stage takes that average
    assert json.loads((tiny_model["package"] / "package.json").read_text())["checkpoint"] == str(ck / f"avg_best{k}.pt")
    assert _history(exp)[-1]["audio_sec_per_sec"] > 0  # the task's throughput unit


def _cli(args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "asr.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


@pytest.mark.slow
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


def test_an_early_stop_metric_the_task_does_not_compute_is_refused_before_epoch_1(tiny, tmp_path, capsys):
    from dataclasses import replace

    from asr.cli import main
    from asr.errors import ConfigError
    from asr.models.lm import LSTMLM, LMConfig
    from asr.train import fit
    from asr.train_lm import LM_TRAIN_DEFAULTS, LMTask

    exp = tmp_path / "am"
    assert main(train_args(tiny, exp, 2, ["--train.early_stop_metric", "dev_ppl"])) == 1
    err = capsys.readouterr().err
    assert "early_stop_metric 'dev_ppl'" in err and "acoustic" in err and "dev_loss, dev_cer, dev_wer" in err
    assert not (exp / "checkpoints").exists() and not (exp / "train.log").exists()
    lm = LSTMLM(LMConfig(embed=8, hidden=8, layers=1), 30)
    cfg = replace(LM_TRAIN_DEFAULTS, early_stop_metric="dev_cer")
    with pytest.raises(ConfigError, match=r"'dev_cer' is not computed when training the lm model; use one of dev_loss, dev_ppl"):
        fit(LMTask(lm, [[1, 2, 3]], [[1, 2]], cfg), cfg, tmp_path / "lm", device="cpu")
    assert not (tmp_path / "lm").exists()


@pytest.mark.slow
def test_ddp_ranks_refuse_a_bad_early_stop_metric_together(tiny, tmp_path):
    """Every rank checks the metric before the process group forms: no rank waits for another."""
    exp = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "asr.cli", *train_args(tiny, exp, 2, ["--train.max_batch", "4",
                                                                     "--train.early_stop_metric", "dev_cerr"])],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert r.returncode != 0
    assert (r.stdout + r.stderr).count("early_stop_metric 'dev_cerr' is not computed") == 2  # one per rank
    assert not (exp / "checkpoints").exists()


# ----------------------------------------------------------------------------- the final average

LM_SENTENCES = ["the cat sat on the mat", "a cat ate the rat", "the dog sat on the log", "my cat likes milk",
                "the cat ran home", "a dog and a cat"]


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _lm_weights(seed: int, steps: int = 80) -> dict:
    """An LSTM LM trained from ``seed`` on LM_SENTENCES (its state dict)."""
    from asr.models.lm import LSTMLM, LMConfig, collate_sentences, lm_loss
    from asr.text import CharTokenizer

    torch.manual_seed(seed)
    tok = CharTokenizer()
    model = LSTMLM(LMConfig(embed=16, hidden=32, layers=1, dropout=0.0), tok.vocab_size)
    x, y, lens = collate_sentences([tok.encode(s) for s in LM_SENTENCES])
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        loss, n = lm_loss(model, x, y, lens)
        opt.zero_grad()
        (loss / n).backward()
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _choose_among(exp: Path, weights: list[dict]) -> dict:
    """Epoch checkpoints holding ``weights`` (best.json from their real dev perplexity), then the
    trainer's final step; returns average.json."""
    from dataclasses import replace

    from asr.checkpoint import epoch_path, save_checkpoint, update_best
    from asr.models.lm import LSTMLM, LMConfig
    from asr.text import CharTokenizer
    from asr.train import choose_average, dev_metrics, setup
    from asr.train_lm import LM_TRAIN_DEFAULTS, LMTask

    tok = CharTokenizer()
    sents = [tok.encode(s) for s in LM_SENTENCES]
    cfg = replace(LM_TRAIN_DEFAULTS, average=len(weights), keep_best=len(weights), threads=0)
    task = LMTask(LSTMLM(LMConfig(embed=16, hidden=32, layers=1, dropout=0.0), tok.vocab_size), sents, sents, cfg)
    run = setup(task, cfg, exp, device="cpu")
    for epoch, w in enumerate(weights, 1):
        run.model.load_state_dict(w)
        save_checkpoint(epoch_path(run.ckpt_dir, epoch), {"model": w, "kind": "lm", **task.checkpoint_meta()})
        update_best(run.ckpt_dir, epoch, dev_metrics(run, run.model)["dev_ppl"], cfg.keep_best)
    chosen = choose_average(run, len(weights))
    rec = json.loads((exp / "average.json").read_text())
    assert rec["k"] == chosen["k"] and rec["checkpoint"] == f"checkpoints/avg_best{chosen['k']}.pt"
    assert [p.name for p in run.ckpt_dir.glob("avg_best*.pt")] == [f"avg_best{chosen['k']}.pt"]
    return rec


def test_an_average_worse_than_the_best_epoch_is_not_kept(tmp_path, one_thread):
    """Two LMs trained from different seeds: each is good, their mean (hidden units unaligned) is not."""
    from asr.models.lm import load_lm, perplexity
    from asr.text import CharTokenizer

    a, b = _lm_weights(seed=1), _lm_weights(seed=2)
    rec = _choose_among(tmp_path / "exp", [a, b])
    ppl = [c["dev_ppl"] for c in rec["candidates"]]
    assert ppl[1] > 1.5 * ppl[0], ppl  # the average is much worse ...
    assert rec["k"] == 1 and rec["metric"] == "dev_ppl"  # ... so the best epoch alone is kept
    best = load_lm(tmp_path / "exp")  # what `asr package --lm-exp` takes
    for k, v in best.state_dict().items():
        torch.testing.assert_close(v, (a if rec["epochs"] == [1] else b)[k], rtol=0, atol=0)
    tok = CharTokenizer()
    assert perplexity(best, [tok.encode(s) for s in LM_SENTENCES]) == pytest.approx(ppl[0], rel=1e-5)


def test_an_average_better_than_the_best_epoch_is_kept(tmp_path, one_thread):
    """Three noisy copies of one trained LM (as epochs around an optimum): their mean is nearer to it."""
    w = _lm_weights(seed=1)
    copies = []
    for i in range(3):
        g = torch.Generator().manual_seed(10 + i)
        copies.append({k: v + 0.25 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
                       for k, v in w.items()})
    rec = _choose_among(tmp_path / "exp", copies)
    ppl = [c["dev_ppl"] for c in rec["candidates"]]
    assert max(ppl[1:]) < 0.7 * ppl[0], ppl  # every average beats the best single copy by far
    assert rec["k"] == 1 + ppl.index(min(ppl)) > 1  # and the best of them is kept
    assert len(rec["epochs"]) == rec["k"]


def test_equal_averages_keep_the_fewest_epochs(tmp_path, one_thread):
    w = _lm_weights(seed=1, steps=10)
    rec = _choose_among(tmp_path / "exp", [w, w])
    assert rec["candidates"][0]["dev_ppl"] == rec["candidates"][1]["dev_ppl"]
    assert rec["k"] == 1
