"""recipes/tts_en/run.sh stages 3-10 (train, package, decode, score, LM, tune, beam+LM, ONNX) on a tiny corpus.

The models are trained for seconds: this checks the stage wiring, the outputs of every stage and
skip-when-done, not accuracy (tests/test_train.py checks learning).
"""
from __future__ import annotations

import json

import pytest

from test_recipe_tts_en import TINY, pytestmark, recipe, run  # noqa: F401  (fixture + skip marker)

TINY_TRAIN = ("--train_args", "--train.epochs 2 --model.hidden 32 --model.layers 1 --model.conv_channels 8 "
              "--train.threads 1", "--lm_args", "--train.epochs 1 --model.hidden 32 --model.embed 16 "
              "--train.threads 1", "--beam", "4")


@pytest.mark.slow
def test_stages_3_to_10_then_skip(recipe):
    r = run(recipe, *TINY, *TINY_TRAIN, "--stop_stage", "10")
    assert r.returncode == 0, r.stderr[-4000:]
    exp = recipe / "exp"
    am = exp / "bilstm_ctc"
    assert (am / "training_curves.png").is_file() and (am / "checkpoints" / "last.pt").is_file()
    results = (am / "RESULTS.md").read_text()
    for row in ("dev_greedy", "test_greedy", "dev_beam_lm", "test_beam_lm"):
        assert f"| {row} |" in results, results
    meta = json.loads((exp / "model" / "package.json").read_text())
    assert {"model.pt", "lm.pt", "tokens.txt", "features.yaml", "cmvn.npz", "decode.yaml"} <= set(meta["files"])
    tuned = json.loads((exp / "model" / "tune_lm.json").read_text())
    assert tuned["data"].endswith("data/dev") and len(tuned["tried"]) >= 3
    assert (exp / "model_onnx" / "model.onnx").is_file()
    report = json.loads((exp / "model_onnx" / "export_report.json").read_text())
    dev_wer = report["dev_wer"]  # the runtime's fp32 and int8 WER on the dev set
    assert dev_wer["data"].endswith("data/dev") and {"fp32", "int8"} <= set(dev_wer)
    assert "test WER (greedy)" in r.stderr

    r = run(recipe, *TINY, *TINY_TRAIN, "--stage", "3", "--stop_stage", "10")
    assert r.returncode == 0, r.stderr[-4000:]
    for name in ("stage 3 (acoustic model)", "stage 4 (package)", "stage 7 (LSTM LM)", "stage 10 (ONNX export)"):
        assert f"{name}: already done with these parameters" in r.stderr, name
    assert "run: asr train " not in r.stderr and "run: asr train-lm" not in r.stderr


def _build_binary_available() -> bool:
    from asr.errors import ASRError
    from asr.ngram.kenlm_build import find_build_binary

    try:
        find_build_binary()
    except ASRError:
        return False
    import importlib.util

    return importlib.util.find_spec("kenlm") is not None


@pytest.mark.slow
def test_stage_11_ngram_then_skip(recipe):
    """Stage 11 after stages 3-10: a 4-gram from the LM text (as a KenLM binary where build_binary
    and the kenlm module are installed, else the ARPA file), packaged, tuned on dev, decoded, scored."""
    if not (recipe / "exp" / "model" / "package.json").is_file():  # run alone: stages 3-10 first
        assert run(recipe, *TINY, *TINY_TRAIN, "--stop_stage", "10").returncode == 0
    binary = ("--ngram_binary", "probing") if _build_binary_available() else ()
    r = run(recipe, *TINY, *TINY_TRAIN, *binary, "--stage", "11", "--stop_stage", "11")
    assert r.returncode == 0, r.stderr[-4000:]
    exp = recipe / "exp"
    assert "-gram" in (exp / "ngram" / "lm.arpa").read_text(errors="replace")[:2000]
    files = set(json.loads((exp / "model_ngram" / "package.json").read_text())["files"])
    assert ("lm.binary" if binary else "lm.arpa") in files and "lm.pt" in files
    tuned = json.loads((exp / "model_ngram" / "tune_lm.json").read_text())
    assert "ngram_weight" in tuned["chosen"]
    results = (exp / "bilstm_ctc" / "RESULTS.md").read_text()
    for row in ("dev_beam_ngram", "test_beam_ngram"):
        assert f"| {row} |" in results, results
    r = run(recipe, *TINY, *TINY_TRAIN, *binary, "--stage", "11", "--stop_stage", "11")
    assert r.returncode == 0, r.stderr[-4000:]
    assert "stage 11 (package with the n-gram LM + tune on dev): already done" in r.stderr
    assert "run: asr build-ngram" not in r.stderr and "run: asr tune-lm-weight" not in r.stderr
