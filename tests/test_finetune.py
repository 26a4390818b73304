"""Fine-tuning (``asr train --init-from``, ``asr train-lm --init-from``): the starting point is the
source model exactly, mismatches are refused by name, frozen layers stay put, resume after a kill."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speech import REPO, TINY_TRAIN

FT_TRAIN = ["--train.max_frames", "700", "--train.max_batch", "2", "--train.warmup_steps", "3", "--train.lr", "0.002",
            "--train.threads", "1", "--train.specaugment", "false", "--train.patience", "0"]


def ft_args(c: dict, exp: Path, src, epochs: int, extra=(), tokens=None, train=None) -> list[str]:
    return ["train", "--train-data", str(train or c["train"]), "--dev-data", str(c["dev"]),
            "--tokens", str(tokens or c["tokens"]), "--cmvn", str(c["cmvn"]), "--exp", str(exp),
            "--init-from", str(src), "--train-conf", str(REPO / "conf/train/finetune.yaml"), "--device", "cpu", "--",
            *FT_TRAIN, "--train.epochs", str(epochs), *extra]


def package_dev_loss(pkg: Path, c: dict) -> float:
    """The CTC loss per utterance of the package's model on the dev set, computed here utterance by
    utterance (no batching, the package's own CMVN), independently of the trainer."""
    from asr.data.datadir import read_kaldi_map
    from asr.data.dataset import load_feature_file
    from asr.package import check_package, load_cmvn, load_torch_model
    from asr.text import load_tokenizer

    model, _ = load_torch_model(check_package(pkg))
    mean, std, _ = load_cmvn(pkg, 80, "features.yaml")
    tok = load_tokenizer(pkg / "tokens.txt")
    feats, text = read_kaldi_map(c["dev"] / "feats.scp"), read_kaldi_map(c["dev"] / "text")
    total = 0.0
    with torch.no_grad():
        for utt in sorted(feats):
            x = torch.from_numpy((load_feature_file(feats[utt], utt) - mean) / std).float()[None]
            lp, n = model(x, torch.tensor([x.shape[1]]))
            y = torch.tensor(tok.encode(text[utt]))
            total += float(torch.nn.functional.ctc_loss(lp[0], y, n, torch.tensor([len(y)]), blank=0,
                                                        reduction="sum", zero_infinity=True))
    return total / len(feats)


def _start(exp: Path) -> dict:
    return json.loads((exp / "start_metrics.json").read_text())


def test_init_from_a_package_starts_at_its_exact_dev_loss_and_records_the_source(tiny_model, tmp_path):
    from asr.cli import main

    pkg, exp = tiny_model["package"], tmp_path / "ft"
    assert main(ft_args(tiny_model, exp, pkg, 1)) == 0
    start = _start(exp)
    # the same figure three ways: this run before its first step, the package evaluated here one
    # utterance at a time, and the original training's evaluation of the averaged model it packaged
    assert start["dev_loss"] == pytest.approx(package_dev_loss(pkg, tiny_model), rel=1e-4)
    chosen = json.loads((tiny_model["exp"] / "average.json").read_text())
    assert start["dev_loss"] == pytest.approx(chosen["dev_loss"], rel=1e-5)
    rec = json.loads((exp / "init.json").read_text())
    assert rec["kind"] == "package" and rec["weights"] == str((pkg / "model.pt").resolve())
    assert rec["sha256"] == hashlib.sha256((pkg / "model.pt").read_bytes()).hexdigest()
    assert rec["cmvn_choice"] == "init" and "starting model" in rec["cmvn_why"]
    assert (exp / "cmvn.npz").read_bytes() == (pkg / "cmvn.npz").read_bytes()
    log = (exp / "train.log").read_text()
    assert "before training (step 0): dev_loss=" in log and "resumed" not in log
    # its own schedule: step counting from 0, the fine-tuning LR, not the source run's
    hist = [json.loads(x) for x in (exp / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [1] and hist[0]["step"] == 6  # 12 utterances, batches of 2
    assert hist[0]["lr"] <= 0.002


def test_init_from_a_checkpoint_or_an_experiment_dir_starts_at_the_same_point(tiny_model, tmp_path):
    from asr.cli import main

    avg = sorted((tiny_model["exp"] / "checkpoints").glob("avg_best*.pt"))[0]
    for name, src in (("ck", avg), ("exp", tiny_model["exp"])):
        exp = tmp_path / name
        assert main(ft_args(tiny_model, exp, src, 0)) == 0  # 0 epochs: the step-0 evaluation only
        assert _start(exp)["dev_loss"] == pytest.approx(package_dev_loss(tiny_model["package"], tiny_model), rel=1e-4)
        assert json.loads((exp / "init.json").read_text())["kind"] == ("checkpoint" if name == "ck" else "experiment")


def test_mismatches_are_refused_by_name(tiny_model, tmp_path, capsys):
    from asr.cli import main
    from asr.tokens import DEFAULT_CHARS, CharTokenizer

    pkg = tiny_model["package"]
    # another token set
    tokens = tmp_path / "tokens.txt"
    CharTokenizer(DEFAULT_CHARS + ["-"]).save(tokens)
    assert main(ft_args(tiny_model, tmp_path / "a", pkg, 1, tokens=tokens)) == 1
    err = capsys.readouterr().err
    assert "token set: 29 tokens (source) vs 30 (new)" in err and "only in the new set: ['-']" in err
    assert "--train.reinit_output true" in err and not (tmp_path / "a" / "checkpoints").exists()
    # other feature settings (same dimension)
    data = tmp_path / "train"
    shutil.copytree(tiny_model["train"], data, ignore=shutil.ignore_patterns("wav"))
    (data / "feats.yaml").write_text((data / "feats.yaml").read_text().replace("fmin: 20.0", "fmin: 40.0"))
    assert main(ft_args(tiny_model, tmp_path / "b", pkg, 1, train=data)) == 1
    err = capsys.readouterr().err
    assert "feature settings: fmin 20.0 (source) vs 40.0 (data)" in err
    # another architecture; dropout alone may change
    assert main(ft_args(tiny_model, tmp_path / "c", pkg, 1, extra=["--model.hidden", "64"])) == 1
    assert "architecture: hidden 128 (source) vs 64 (new)" in capsys.readouterr().err
    assert main(ft_args(tiny_model, tmp_path / "d", pkg, 0, extra=["--model.dropout", "0.2"])) == 0
    # an ONNX-only or LM-less source for the wrong job
    assert main(["train-lm", "--text", str(tiny_model["train"] / "text"), "--dev-text", str(tiny_model["dev"] / "text"),
                 "--utt-ids", "--tokens", str(tiny_model["tokens"]), "--exp", str(tmp_path / "lm"),
                 "--init-from", str(pkg)]) == 1
    assert "has no lm.pt" in capsys.readouterr().err


def _weights(path: Path) -> dict:
    st = torch.load(path, weights_only=True)
    return st.get("model", st.get("state_dict"))


def test_new_tokens_with_a_fresh_output_layer_and_frozen_layers(tiny_model, tmp_path):
    """reinit_output on purpose: everything but the head is the package's; frozen parts do not move."""
    from asr.cli import main
    from asr.tokens import DEFAULT_CHARS, CharTokenizer

    tokens = tmp_path / "tokens.txt"
    CharTokenizer(DEFAULT_CHARS + ["-"]).save(tokens)
    exp = tmp_path / "ft"
    assert main(ft_args(tiny_model, exp, tiny_model["package"], 2, tokens=tokens,
                        extra=["--train.reinit_output", "true", "--train.freeze", "frontend,lstm.0"])) == 0
    src, out = _weights(tiny_model["package"] / "model.pt"), _weights(exp / "checkpoints" / "last.pt")
    assert json.loads((exp / "init.json").read_text())["reinit_output"] == ["head.weight", "head.bias"]
    assert out["head.weight"].shape == (30, 256) and src["head.weight"].shape == (29, 256)
    frozen = [k for k in src if not k.startswith("head.")]
    assert frozen and all(torch.equal(src[k], out[k]) for k in frozen)
    assert not torch.equal(_weights(exp / "checkpoints" / "epoch_0001.pt")["head.weight"], out["head.weight"])


def test_a_frozen_front_end_stays_while_the_rest_trains(tiny_model, tmp_path, capsys):
    from asr.cli import main

    exp = tmp_path / "ft"
    assert main(ft_args(tiny_model, exp, tiny_model["package"], 2, extra=["--train.freeze", "frontend"])) == 0
    assert "frozen (frontend):" in capsys.readouterr().out
    src, out = _weights(tiny_model["package"] / "model.pt"), _weights(exp / "checkpoints" / "last.pt")
    front = [k for k in src if k.startswith("frontend.")]
    assert front and all(torch.equal(src[k], out[k]) for k in front)
    assert not torch.equal(src["lstm.weight_hh_l0"], out["lstm.weight_hh_l0"])
    assert not torch.equal(src["head.weight"], out["head.weight"])
    assert main(ft_args(tiny_model, tmp_path / "x", tiny_model["package"], 1, extra=["--train.freeze", "lstm.5"])) == 1
    assert "'lstm.5' names no part of the model; choose from frontend, head, lstm.0" in capsys.readouterr().err


def test_a_killed_fine_tuning_run_resumes_to_the_uninterrupted_result(tiny_model, tmp_path):
    from asr.cli import main

    pkg = tiny_model["package"]
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert main(ft_args(tiny_model, ref, pkg, 3)) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ASR_TEST_KILL_AT": "last_pt:2"}
    r = subprocess.run([sys.executable, "-m", "asr.cli", *ft_args(tiny_model, run, pkg, 3)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 77, r.stdout[-2000:] + r.stderr[-2000:]
    # resuming from other weights is refused; the same source resumes where the kill left it
    avg = sorted((tiny_model["exp"] / "checkpoints").glob("avg_best*.pt"))[0]
    assert main(ft_args(tiny_model, run, avg, 3)) == 1
    assert main(ft_args(tiny_model, run, pkg, 3)) == 0
    log = (run / "train.log").read_text()
    assert "resumed from" in log and log.count("before training (step 0)") == 1
    a, b = _weights(ref / "checkpoints" / "last.pt"), _weights(run / "checkpoints" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _start(ref) == _start(run)


def test_lm_init_from_a_package_starts_at_its_perplexity(tiny_model, tiny_model_lm, tmp_path, capsys):
    from asr.cli import main
    from asr.models.lm import load_lm, perplexity
    from asr.text import load_tokenizer
    from asr.train_lm import read_sentences

    exp = tmp_path / "lmft"
    args = ["train-lm", *tiny_model_lm["lm_args"], "--exp", str(exp), "--init-from", str(tiny_model_lm["pkg"]),
            "--train-conf", str(REPO / "conf/train/finetune.yaml"), "--", "--train.threads", "1",
            "--train.early_stop_metric", "dev_ppl"]
    assert main([*args, "--train.epochs", "0"]) == 0
    dev, _ = read_sentences([tiny_model["dev"] / "text"], load_tokenizer(tiny_model["tokens"]), utt_ids=True)
    want = perplexity(load_lm(tiny_model_lm["pkg"] / "lm.pt"), dev)
    assert _start(exp)["dev_ppl"] == pytest.approx(want, rel=1e-5)
    rec = json.loads((exp / "init.json").read_text())
    assert rec["weights"] == str((tiny_model_lm["pkg"] / "lm.pt").resolve()) and rec["reinit_output"] == []
    assert main([*args, "--train.epochs", "2", "--train.freeze", "embed"]) == 0  # resumes nothing: 0 epochs had no last.pt
    src, out = _weights(tiny_model_lm["pkg"] / "lm.pt"), _weights(exp / "checkpoints" / "last.pt")
    assert torch.equal(src["embed.weight"], out["embed.weight"])
    assert not torch.equal(src["out.weight"], out["out.weight"])
    assert main(["train-lm", *tiny_model_lm["lm_args"], "--exp", str(tmp_path / "x"), "--init-from",
                 str(tiny_model_lm["pkg"]), "--", "--model.hidden", "64"]) == 1
    assert "architecture: hidden 32 (source) vs 64 (new)" in capsys.readouterr().err
