"""recipes/tts_en/run.sh stages 0-2 on a tiny corpus (espeak-ng + flite), in a copy of the recipe."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from speech import recipe_env

ROOT = Path(__file__).resolve().parents[1]
FORTUNES = Path("/usr/share/games/fortunes")

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("flite") is None or not FORTUNES.is_dir(),
    reason="espeak-ng, flite and fortunes are needed (make deps)")

TINY = ["--hours", "0.003", "--dev_hours", "0.002", "--test-hours", "0.002", "--engines", "espeak,flite",
        "--sources", "fortunes", "--nj", "2"]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """A copy of recipes/{_common,tts_en} (scripts and conf only) with the repo's conf/ beside it."""
    root = tmp_path_factory.mktemp("repo")
    (root / "recipes" / "tts_en").mkdir(parents=True)
    shutil.copytree(ROOT / "recipes" / "_common", root / "recipes" / "_common")
    shutil.copy2(ROOT / "recipes" / "tts_en" / "run.sh", root / "recipes" / "tts_en" / "run.sh")
    shutil.copytree(ROOT / "recipes" / "tts_en" / "conf", root / "recipes" / "tts_en" / "conf", symlinks=True)
    shutil.copytree(ROOT / "conf", root / "conf")
    return root / "recipes" / "tts_en"


def run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(recipe / "run.sh"), *args], capture_output=True, text=True, env=recipe_env(),
                          timeout=600, cwd=recipe.parent)


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_help_and_bad_option(recipe):
    r = run(recipe, "--help")
    assert r.returncode == 0 and "stage 0" in r.stdout and "--hours" in r.stdout
    r = run(recipe, "--no_such_option", "1")
    assert r.returncode != 0 and "unknown option --no_such_option" in r.stderr
    r = run(recipe, "--hours")
    assert r.returncode != 0 and "needs a value" in r.stderr


@pytest.mark.slow
def test_stages_0_to_2_then_skip_when_done(recipe):
    r = run(recipe, *TINY, "--stop_stage", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    data = recipe / "data"
    for s in ("train", "dev", "test"):
        for f in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur", "feats.scp"):
            assert (data / s / f).is_file(), (s, f)
        n_utt = len((data / s / "wav.scp").read_text().splitlines())
        assert len((data / s / "feats.scp").read_text().splitlines()) == n_utt
    assert (data / "train" / "cmvn.npz").is_file()
    assert (data / "lang_char" / "tokens.txt").is_file()
    assert (data / "corpus_stats.json").is_file() and (data / "lm_text" / "train.txt").is_file()
    for n in range(3):
        assert (data / f".stage{n}.done").is_file()
    assert "run: python -m asr.synthesis.generate" in r.stderr and "run: asr extract-features" in r.stderr
    # the recipe's --train_dither 1.0: only the training set's features come from dithered audio
    dither = {s: yaml.safe_load((data / s / "feats.yaml").read_text())["dither"] for s in ("train", "dev", "test")}
    assert dither == {"train": 1.0, "dev": 0.0, "test": 0.0}, dither
    assert "train_dither=1.0" in (data / ".stage2.done").read_text()
    r = run(recipe, *TINY, "--train_dither", "lots", "--stage", "2", "--stop_stage", "2")
    assert r.returncode != 0 and "--train_dither must be a number >= 0, got 'lots'" in r.stderr

    before = {**_mtimes(data), **{"dump/" + k: v for k, v in _mtimes(recipe / "dump").items()},
              **{"db/" + k: v for k, v in _mtimes(recipe / "db").items()}}
    r = run(recipe, *TINY, "--stop_stage", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("stage 0 (corpus)", "stage 1 (data dirs)", "stage 2 (features)"):
        assert f"{name}: already done with these parameters" in r.stderr
    assert r.stderr.count("skipping") == 3
    assert "run: " not in r.stderr
    after = {**_mtimes(data), **{"dump/" + k: v for k, v in _mtimes(recipe / "dump").items()},
             **{"db/" + k: v for k, v in _mtimes(recipe / "db").items()}}
    assert after == before

    # a redone stage 0 (marker lost) leaves data dirs that stages 1-2 accept and redo
    (data / ".stage0.done").unlink()
    r = run(recipe, *TINY, "--stop_stage", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "0 to synthesise" in r.stderr and "stage 1 (data dirs): done" in r.stderr
    assert not (data / "train" / "feats.scp").exists() and not (recipe / "dump" / "train").exists()

    # a changed parameter redoes the stage, says what changed, and later stages follow
    r = run(recipe, *TINY, "--seed", "1", "--stop_stage", "0")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "stage 0 (corpus): parameters changed" in r.stderr and "seed=1" in r.stderr
    assert "seed=1" in (data / ".stage0.done").read_text()
    # the data dirs were rewritten, so stages 1-2 are no longer done
    assert not (data / ".stage1.done").exists() and not (data / ".stage2.done").exists()
    r = run(recipe, *TINY, "--seed", "1", "--stage", "1", "--stop_stage", "1")
    assert r.returncode == 0 and "run: asr prepare-data" in r.stderr and "stage 1 (data dirs): done" in r.stderr
    assert "seed=1" in (data / ".stage1.done").read_text()


def test_later_stage_without_corpus_says_what_to_do(tmp_path):
    root = tmp_path / "recipes"
    (root / "tts_en").mkdir(parents=True)
    shutil.copytree(ROOT / "recipes" / "_common", root / "_common")
    shutil.copy2(ROOT / "recipes" / "tts_en" / "run.sh", root / "tts_en" / "run.sh")
    r = run(root / "tts_en", "--stage", "1", "--stop_stage", "1")
    assert r.returncode != 0 and "run stage 0 first" in r.stderr
