"""Test helpers: tiny speech data dirs spoken by espeak-ng, features and a seconds-trained model.

Importable from tests as ``from speech import ...`` (tests/ is on sys.path under pytest).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng not installed (make deps)")


def espeak_wav(path: Path, text: str, voice: str = "en-us", speed: int = 160, pitch: int = 50) -> Path:
    """Speak ``text`` with espeak-ng into ``path`` (22.05 kHz mono WAV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ESPEAK, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
                   check=True, capture_output=True)
    return path


def make_datadir(root: Path, items: list[tuple[str, str, str, int]]) -> Path:
    """Data dir from (utt_id, text, voice, speed) tuples; speaker = voice."""
    from asr.data.datadir import write_kaldi_map

    root.mkdir(parents=True, exist_ok=True)
    wav, text, u2s = {}, {}, {}
    for utt, sentence, voice, speed in items:
        spk = voice.replace("+", "-")
        uid = f"{spk}-{utt}"
        wav[uid] = str(espeak_wav(root / "wav" / f"{uid}.wav", sentence, voice, speed).resolve())
        text[uid] = sentence
        u2s[uid] = spk
    write_kaldi_map(root / "wav.scp", wav)
    write_kaldi_map(root / "text", text)
    write_kaldi_map(root / "utt2spk", u2s)
    return root


def featurize(data_dir: Path, dump: Path, cmvn_out: Path | None = None):
    from asr.features import FeatureConfig, extract_features

    return extract_features(data_dir, dump, FeatureConfig(), cmvn_out=cmvn_out, nj=1, progress=False)


TINY_SENTENCES = ["yes", "no", "go up", "stop now"]
TINY_VOICES = [("en-us", 170), ("en-gb", 150), ("en-us+f3", 140)]


def tiny_corpus(root: Path) -> dict[str, Path]:
    """train (4 sentences x 3 voices) and dev (same sentences, one voice) with features + CMVN."""
    from asr.text import CharTokenizer

    train = make_datadir(root / "data" / "train",
                         [(f"u{i}", s, v, sp) for i, s in enumerate(TINY_SENTENCES) for v, sp in TINY_VOICES])
    dev = make_datadir(root / "data" / "dev", [(f"u{i}", s, "en-us", 160) for i, s in enumerate(TINY_SENTENCES)])
    featurize(train, root / "dump" / "train", root / "data" / "train" / "cmvn.npz")
    featurize(dev, root / "dump" / "dev")
    tokens = root / "data" / "tokens.txt"
    CharTokenizer().save(tokens)
    return {"train": train, "dev": dev, "tokens": tokens, "cmvn": root / "data" / "train" / "cmvn.npz"}


# pinned to the small config the tests' bounds were measured with (x2, no per-utterance mean
# normalisation), whatever conf/model/small.yaml's defaults become
TINY_MODEL = ["--model.hidden", "128", "--model.layers", "1", "--model.conv_channels", "16",
              "--model.subsampling", "2", "--model.dropout", "0.0", "--model.utt_mean_norm", "false"]
TINY_TRAIN = ["--train.max_frames", "700", "--train.max_batch", "2", "--train.warmup_steps", "5", "--train.lr", "0.005",
              "--train.patience", "0", "--train.threads", "1", "--train.specaugment", "false",
              "--train.schedule", "constant", "--train.early_stop_metric", "dev_loss"]


def train_args(c: dict, exp: Path, epochs: int, extra: list[str] = ()) -> list[str]:
    return ["train", "--train-data", str(c["train"]), "--dev-data", str(c["dev"]), "--tokens", str(c["tokens"]),
            "--cmvn", str(c["cmvn"]), "--exp", str(exp), "--model-conf", str(REPO / "conf/model/small.yaml"),
            "--train-conf", str(REPO / "conf/train/cpu.yaml"), "--device", "cpu", "--",
            *TINY_MODEL, *TINY_TRAIN, "--train.epochs", str(epochs), *extra]


REPO = Path(__file__).resolve().parent.parent


def recipe_env(**extra: str) -> dict[str, str]:
    """The environment a test runs a recipe's run.sh in: this venv's ``asr`` and ``python`` first on
    PATH, plus ``extra`` variables."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def repo_pythonpath() -> str:
    """PYTHONPATH with this checkout first (subprocesses import the code under test)."""
    return f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"


def copy_recipes(root: Path, *names: str) -> Path:
    """recipes/_common, the named recipes (run.sh, conf links) and conf/ copied under ``root``;
    returns ``root/recipes``. Recipes write data/ and exp/ beside run.sh, so tests run them in a copy."""
    shutil.copytree(REPO / "recipes" / "_common", root / "recipes" / "_common")
    for name in names:
        (root / "recipes" / name).mkdir(parents=True)
        shutil.copy2(REPO / "recipes" / name / "run.sh", root / "recipes" / name / "run.sh")
        shutil.copytree(REPO / "recipes" / name / "conf", root / "recipes" / name / "conf", symlinks=True)
    shutil.copytree(REPO / "conf", root / "conf")
    return root / "recipes"


def sine(freq: float, seconds: float, sr: int, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
