"""recipes/{librispeech,an4,commonvoice,kaldi_datadir}/run.sh on tiny corpora in their published layouts,
in a copy of the recipes: stage 0 (layout check + data prep) for each, a clear failure on a broken
layout, and (slow) mini-LibriSpeech through the shared stages 1-6 with a seconds-long training."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import corpus_layouts as cl
from speech import copy_recipes, recipe_env, needs_espeak

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("librispeech", "an4", "commonvoice", "kaldi_datadir")
pytestmark = needs_espeak

TINY_TRAIN = ["--nj", "1", "--model_conf", "../../conf/model/small.yaml", "--train_conf", "../../conf/train/cpu.yaml",
              "--train_args", "--train.epochs 1 --model.hidden 32 --model.layers 1 --model.conv_channels 8 "
              "--train.threads 1"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """recipes/_common + the corpus recipes (run.sh, conf links) + conf/, copied."""
    return copy_recipes(tmp_path_factory.mktemp("repo"), *RECIPES)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("corpora")
    return {"librispeech": cl.librispeech(base / "ls", mini=True) / "LibriSpeech", "an4": cl.an4(base / "an4"),
            "commonvoice": cl.commonvoice(base / "cv")}


def run(recipe: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(recipe / "run.sh"), *args], capture_output=True, text=True, env=recipe_env(),
                          timeout=600, cwd=cwd or recipe.parent)


def test_conf_links_resolve_to_gpu_configs():
    for r in RECIPES:
        conf = ROOT / "recipes" / r / "conf"
        assert (conf / "model.yaml").resolve() == (ROOT / "conf" / "model" / "large.yaml").resolve()
        assert (conf / "train.yaml").resolve() == (ROOT / "conf" / "train" / "gpu.yaml").resolve()
        for f in ("fbank.yaml", "lm.yaml", "lm_train.yaml"):
            assert (conf / f).resolve().is_file(), (r, f)
        assert "Expected WER" in (ROOT / "recipes" / r / "README.md").read_text()


@pytest.mark.parametrize("name", ["an4", "commonvoice"])
def test_stage0_writes_data_dirs(repo, corpora, name):
    recipe = repo / name
    r = run(recipe, "--corpus_dir", str(corpora[name]), "--stop_stage", "0")
    assert r.returncode == 0, r.stderr[-3000:]
    for s in ("train", "dev", "test"):
        assert (recipe / "data" / s / "wav.scp").is_file() and (recipe / "data" / s / "text").is_file()
    assert (recipe / "data" / "lm_text" / "train.txt").is_file() and (recipe / "data" / ".stage0.done").is_file()
    r = run(recipe, "--corpus_dir", str(corpora[name]), "--stop_stage", "0")
    assert "stage 0 (corpus): already done with these parameters" in r.stderr


def test_broken_layout_fails_at_stage0_with_one_message(repo, corpora, tmp_path):
    r = run(repo / "an4", "--corpus_dir", str(tmp_path), "--stop_stage", "3")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "does not look like AN4: missing etc/an4_train.transcription" in r.stderr and "Expected layout" in r.stderr
    assert "stage 1" not in r.stderr and not (repo / "an4" / "data" / ".stage1.done").exists()
    r = run(repo / "librispeech", "--stop_stage", "0")
    assert r.returncode != 0 and "stage 0 needs --corpus_dir" in r.stderr
    # a relative --corpus_dir is taken relative to where the user runs the script
    rel = os.path.relpath(corpora["librispeech"], tmp_path)
    r = run(repo / "librispeech", "--corpus_dir", rel, "--stop_stage", "0", cwd=tmp_path)
    assert r.returncode != 0 and "use --mini" in r.stderr  # found it: mini subsets but --mini not given


def test_kaldi_datadir_stage0(repo, corpora, tmp_path):
    from asr.data.datadir import write_kaldi_map

    flacs = sorted(corpora["librispeech"].rglob("*.flac"))
    for name, sel in (("tr", flacs[:12]), ("dv", flacs[12:18]), ("ev", flacs[18:])):
        d = tmp_path / "k" / name
        d.mkdir(parents=True)
        write_kaldi_map(d / "wav.scp", {f.stem: str(f) for f in sel})
        write_kaldi_map(d / "text", {f.stem: "HELLO WORLD" for f in sel})
    k = tmp_path / "k"
    r = run(repo / "kaldi_datadir", "--train_dir", str(k / "tr"), "--dev_dir", str(k / "dv"), "--test_dirs",
            str(k / "ev"), "--stop_stage", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    data = repo / "kaldi_datadir" / "data"
    assert (data / "test_sets").read_text().split() == ["test"]
    assert (data / "test" / "utt2dur").is_file() and (data / ".stage1.done").is_file()
    assert (data / "train" / "text").read_text().splitlines()[0].endswith(" hello world")
    # --speed_perturb (on by default in this recipe): data/train_sp, 3-way, Kaldi ids, durations / factor
    from asr.data.datadir import DataDir, read_kaldi_map

    src, sp = DataDir.load(data / "train"), DataDir.load(data / "train_sp")
    assert sorted(sp.utt_ids) == sorted(p + u for u in src.utt_ids for p in ("", "sp0.9-", "sp1.1-"))
    src_dur, sp_dur = src.durations(), read_kaldi_map(data / "train_sp" / "utt2dur")
    for u in src.utt_ids:
        assert sp.utt2spk["sp0.9-" + u] == "sp0.9-" + src.utt2spk[u] and sp.utt2spk[u] == src.utt2spk[u]
        for f in (0.9, 1.0, 1.1):
            assert float(sp_dur[("" if f == 1.0 else f"sp{f:g}-") + u]) == pytest.approx(src_dur[u] / f, abs=2e-3)
    assert "speed_perturb=0.9,1.0,1.1" in (data / ".stage1.done").read_text()
    assert (data / "train_sp" / "spk2utt").is_file() and (data / "train_sp" / "text").is_file()
    # stage 2 takes the CMVN stats from the perturbed training set; conf/train/gpu.yaml trains on the
    # fly, so the training set is not dumped (dev is)
    r = run(repo / "kaldi_datadir", "--stage", "2", "--stop_stage", "2", "--nj", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(read_kaldi_map(data / "train_sp" / "utt2num_frames")) == sorted(sp.utt_ids)
    assert (data / "train_sp" / "cmvn.npz").is_file() and (data / "train_sp" / "feats.yaml").is_file()
    assert not (data / "train_sp" / "feats.scp").exists() and not (data / "train" / "feats.scp").exists()
    assert (data / "dev" / "feats.scp").is_file()
    marker = (data / ".stage2.done").read_text()
    assert "speed_perturb=0.9,1.0,1.1" in marker and "train_on_the_fly=true" in marker
    # stage 3 trains on the fly from the audio of data/train_sp (its features were never dumped)
    r = run(repo / "kaldi_datadir", "--stage", "3", "--stop_stage", "3", "--model_conf", "../../conf/model/small.yaml",
            "--train_args", "--train.epochs 1 --model.hidden 16 --model.layers 1 --model.conv_channels 4 "
            "--train.num_workers 1 --train.threads 1 --train.max_frames 3000 --train.average 0")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "--train-data data/train_sp" in r.stderr and "--cmvn data/train_sp/cmvn.npz" in r.stderr
    am = repo / "kaldi_datadir" / "exp" / "bilstm_ctc"
    assert (am / "checkpoints" / "last.pt").is_file() and (am / "features.yaml").is_file()
    assert "on_the_fly: true" in (am / "train.yaml").read_text()
    # --train.on_the_fly false in train_args: stage 2 is redone and dumps the perturbed set
    r = run(repo / "kaldi_datadir", "--stage", "2", "--stop_stage", "2", "--nj", "1",
            "--train_args", "--train.on_the_fly false --train.noise_prob 0 --train.reverb_prob 0")
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(read_kaldi_map(data / "train_sp" / "feats.scp")) == sorted(sp.utt_ids)
    assert "train_on_the_fly" not in (data / ".stage2.done").read_text()


@pytest.mark.slow
def test_mini_librispeech_through_shared_stages(repo, corpora):
    recipe = repo / "librispeech"
    args = ["--corpus_dir", str(corpora["librispeech"]), "--mini", "true", *TINY_TRAIN]
    r = run(recipe, *args, "--stop_stage", "6")
    assert r.returncode == 0, r.stderr[-4000:]
    am = recipe / "exp" / "bilstm_ctc"
    assert (am / "checkpoints" / "last.pt").is_file() and (am / "package_greedy" / "package.json").is_file()
    results = (am / "RESULTS.md").read_text()
    assert "| dev_greedy |" in results and "| test_greedy |" in results
    assert "test WER (greedy)" in r.stderr
    assert "--model-conf ../../conf/model/small.yaml" in r.stderr
    r = run(recipe, *args, "--stop_stage", "5")
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("stage 0 (corpus)", "stage 1 (data dirs)", "stage 2 (features)", "stage 3 (acoustic model)",
                 "stage 4 (package)", "stage 5 (greedy decode test)"):
        assert f"{name}: already done with these parameters" in r.stderr, name
    assert "run: " not in r.stderr
