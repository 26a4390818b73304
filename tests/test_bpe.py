"""BPE end to end: ``asr make-tokens --token-type bpe`` on the training transcripts only, then train,
LM on the same units, package, decode (greedy and beam + LM) and ONNX export, with the same text from
both backends; the package holds bpe.model and its hash. Plus the shared stage 1 with
``--token_type bpe --nbpe N`` in a recipe."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speech import REPO, copy_recipes, recipe_env, repo_pythonpath, needs_espeak, train_args

pytestmark = needs_espeak

NBPE = 12


@pytest.fixture(scope="module")
def bpe_model(tiny, tmp_path_factory):
    """The tiny corpus with BPE units: lang dir, a seconds-trained acoustic model, an LM on the same
    units, and the packages (greedy; beam + LM) and the ONNX export of the second."""
    from asr.cli import main

    root = tmp_path_factory.mktemp("bpe")
    lang = root / "lang_bpe"
    assert main(["make-tokens", "--train-data", str(tiny["train"]), "--out", str(lang), "--token-type", "bpe",
                 "--nbpe", str(NBPE)]) == 0
    c = {**tiny, "tokens": lang / "tokens.txt"}
    exp = root / "am"
    assert main(train_args(c, exp, 40)) == 0
    assert main(["package", "--exp", str(exp), "--out", str(root / "pkg")]) == 0
    text = root / "lm.txt"
    text.write_text("".join(f"{s}\n" for s in ("yes", "no", "go up", "stop now") * 5))
    assert main(["train-lm", "--text", str(text), "--dev-text", str(text), "--tokens", str(lang / "tokens.txt"),
                 "--exp", str(root / "lm"), "--conf", str(REPO / "conf/model/lm_small.yaml"), "--device", "cpu",
                 "--", "--model.hidden", "32", "--model.layers", "1", "--train.epochs", "2",
                 "--train.threads", "1"]) == 0
    assert main(["package", "--exp", str(exp), "--lm-exp", str(root / "lm"), "--out", str(root / "pkg_lm")]) == 0
    assert main(["export", "--model", str(root / "pkg_lm"), "--out", str(root / "onnx")]) == 0
    return {"root": root, "lang": lang, "exp": exp, "pkg": root / "pkg", "pkg_lm": root / "pkg_lm",
            "onnx": root / "onnx", **tiny}


def test_bpe_is_trained_on_the_training_transcripts_only(bpe_model):
    from asr.data.datadir import read_kaldi_map
    from asr.text import BPETokenizer, load_tokenizer

    tok = load_tokenizer(bpe_model["lang"] / "tokens.txt")
    assert isinstance(tok, BPETokenizer) and 3 < tok.vocab_size <= NBPE + 1
    # the same training (sentencepiece is deterministic on one thread) on the train text alone
    alone = BPETokenizer.train(read_kaldi_map(bpe_model["train"] / "text").values(), vocab_size=NBPE + 1)
    assert (bpe_model["lang"] / "bpe.model").read_bytes() == alone._proto


def test_every_stage_carries_bpe_model(bpe_model):
    from asr.package import check_package, sha256

    model = (bpe_model["lang"] / "bpe.model").read_bytes()
    for d in (bpe_model["exp"], bpe_model["root"] / "lm"):
        assert (d / "bpe.model").read_bytes() == model, d
    for pkg in (bpe_model["pkg"], bpe_model["pkg_lm"], bpe_model["onnx"]):
        info = check_package(pkg)
        assert info.meta["files"]["bpe.model"] == sha256(pkg / "bpe.model") == sha256(bpe_model["lang"] / "bpe.model")
    # a package whose bpe.model was swapped for another is refused by its hash
    from asr.errors import ModelPackageError
    from asr.text import BPETokenizer

    bad = bpe_model["root"] / "bad_pkg"
    shutil.copytree(bpe_model["pkg"], bad)
    (bad / "bpe.model").write_bytes(BPETokenizer.train(["other words entirely"] * 3, vocab_size=30)._proto)
    with pytest.raises(ModelPackageError, match="bpe.model"):
        check_package(bad)


def test_both_backends_give_the_same_text(bpe_model):
    from asr.recognizer import Recognizer
    from asr.score import error_rates
    from asr.data.datadir import read_kaldi_map

    wavs = read_kaldi_map(bpe_model["dev"] / "wav.scp")
    refs = read_kaldi_map(bpe_model["dev"] / "text")
    for kw in ({"method": "greedy"}, {"method": "beam", "beam": 8}):
        torch_rec = Recognizer(bpe_model["pkg_lm"], backend="torch", **kw)
        onnx_rec = Recognizer(bpe_model["onnx"], backend="onnx", **kw)
        assert type(torch_rec.tokenizer).__name__ == type(onnx_rec.tokenizer).__name__ == "BPETokenizer"
        hyp_t = [torch_rec.transcribe(p) for p in wavs.values()]
        hyp_o = [onnx_rec.transcribe(p) for p in wavs.values()]
        assert hyp_t == hyp_o, kw
        # the seconds-trained model on its own training sentences: far from chance
        assert error_rates(list(refs.values()), hyp_t)["cer"] < 0.6, (kw, hyp_t)


def test_decode_cli_on_bpe_package(bpe_model, tmp_path):
    from asr.cli import main

    out = tmp_path / "dec"
    assert main(["decode", "--model", str(bpe_model["pkg"]), "--data", str(bpe_model["dev"]), "--out", str(out),
                 "--method", "greedy", "--nj", "1"]) == 0
    hyp = dict(line.split(" ", 1) if " " in line else (line, "") for line in (out / "hyp").read_text().splitlines())
    assert len(hyp) == 4 and all("\u2581" not in h for h in hyp.values())  # pieces are joined into words


def test_lm_on_other_units_is_refused(bpe_model, tiny, tmp_path):
    """A char LM beside a BPE acoustic model would score the wrong ids: package says so."""
    from asr.cli import main
    from asr.errors import ModelPackageError
    from asr.package import write_package

    lm = tmp_path / "char_lm"
    shutil.copytree(bpe_model["root"] / "lm", lm)
    shutil.copyfile(tiny["tokens"], lm / "tokens.txt")
    (lm / "bpe.model").unlink()
    with pytest.raises(ModelPackageError, match="tokens.txt differ"):
        write_package(bpe_model["exp"], tmp_path / "pkg", lm_exp=str(lm))
    assert not (tmp_path / "pkg").exists()
    assert main(["package", "--exp", str(bpe_model["exp"]), "--lm-exp", str(lm), "--out", str(tmp_path / "p")]) == 1


def test_make_tokens_char_removes_stale_bpe_model(tiny, tmp_path, capsys):
    from asr.cli import main
    from asr.text import CharTokenizer, load_tokenizer

    lang = tmp_path / "lang"
    assert main(["make-tokens", "--train-data", str(tiny["train"]), "--out", str(lang), "--token-type", "bpe",
                 "--nbpe", "500"]) == 0
    assert "asked for 500" in capsys.readouterr().out  # a tiny corpus gives fewer pieces, and says so
    assert main(["make-tokens", "--train-data", str(tiny["train"]), "--out", str(lang)]) == 0
    assert not (lang / "bpe.model").exists() and isinstance(load_tokenizer(lang), CharTokenizer)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "text").write_text("u1 \n")
    assert main(["make-tokens", "--train-data", str(empty), "--out", str(lang), "--token-type", "bpe"]) == 1
    assert "holds no transcripts" in capsys.readouterr().err


def _recipe_copy(root: Path) -> Path:
    return copy_recipes(root, "kaldi_datadir") / "kaldi_datadir"


def _run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(recipe / "run.sh"), *args], capture_output=True, text=True,
                          env=recipe_env(PYTHONPATH=repo_pythonpath()),
                          timeout=600, cwd=recipe)


def test_shared_stage1_token_type_bpe(tiny, tmp_path):
    """--token_type bpe --nbpe N: data/lang_bpe_N from the training text; char runs keep data/lang_char
    and their old stage parameters; an unknown token type is refused."""
    recipe = _recipe_copy(tmp_path)
    dirs = ["--train_dir", str(tiny["train"]), "--dev_dir", str(tiny["dev"]), "--test_dirs", str(tiny["dev"])]
    r = _run(recipe, *dirs, "--stop_stage", "1", "--token_type", "bpe", "--nbpe", str(NBPE))
    assert r.returncode == 0, r.stderr[-3000:]
    lang = recipe / "data" / f"lang_bpe_{NBPE}"
    assert (lang / "tokens.txt").is_file() and (lang / "bpe.model").is_file()
    assert f" tokens=bpe nbpe={NBPE}" in (recipe / "data" / ".stage1.done").read_text()  # (+ speed_perturb=...)
    assert f"--token-type bpe --nbpe {NBPE}" in r.stderr
    r = _run(recipe, *dirs, "--stop_stage", "1", "--token_type", "bpe", "--nbpe", str(NBPE))
    assert "stage 1 (data dirs): already done with these parameters" in r.stderr
    r = _run(recipe, *dirs, "--stage", "1", "--stop_stage", "1")  # the default: characters, as before
    assert r.returncode == 0, r.stderr[-3000:]
    assert (recipe / "data" / "lang_char" / "tokens.txt").is_file()
    assert not (recipe / "data" / "lang_char" / "bpe.model").exists()
    assert " tokens=char" in (recipe / "data" / ".stage1.done").read_text()
    r = _run(recipe, *dirs, "--stage", "1", "--stop_stage", "1", "--token_type", "wordpiece")
    assert r.returncode != 0 and "--token_type must be char or bpe" in r.stderr


@pytest.mark.slow
def test_recipe_stages_1_to_10_with_bpe(tiny, tmp_path):
    """The kaldi_datadir recipe with BPE through every shared stage: train, LM, tuning, beam + LM
    decoding and the ONNX export, all on the BPE units."""
    recipe = _recipe_copy(tmp_path)
    lm_text = tmp_path / "lm.txt"
    lm_text.write_text("".join(f"{s}\n" for s in ("yes", "no", "go up", "stop now") * 5))
    r = _run(recipe, "--train_dir", str(tiny["train"]), "--dev_dir", str(tiny["dev"]), "--test_dirs",
             str(tiny["dev"]), "--lm_text", str(lm_text), "--token_type", "bpe", "--nbpe", str(NBPE), "--nj", "1",
             "--model_conf", "../../conf/model/small.yaml", "--train_conf", "../../conf/train/cpu.yaml",
             "--train_args", "--train.epochs 2 --model.hidden 32 --model.layers 1 --model.conv_channels 8 "
             "--train.threads 1", "--lm_args", "--train.epochs 1 --model.hidden 16 --model.layers 1",
             "--beam", "4")
    assert r.returncode == 0, r.stderr[-4000:]
    lang = recipe / "data" / f"lang_bpe_{NBPE}"
    for d in ("exp/bilstm_ctc", "exp/lstm_lm", "exp/model", "exp/model_onnx"):
        assert (recipe / d / "bpe.model").read_bytes() == (lang / "bpe.model").read_bytes(), d
    meta = json.loads((recipe / "exp" / "model_onnx" / "package.json").read_text())
    assert "bpe.model" in meta["files"]


def test_runtime_without_sentencepiece_decodes_and_says_what_encoding_needs(bpe_model, monkeypatch):
    """The torch-free runtime decodes a BPE package from tokens.txt alone; encoding text (hotwords)
    without sentencepiece is a TextError that names the package to install."""
    from asr.errors import TextError
    from asr.package import load_package_tokenizer

    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # import sentencepiece -> ImportError
    tok = load_package_tokenizer(bpe_model["onnx"])
    ids = [i for i, t in enumerate(tok.tokens) if t.startswith("\u2581") and len(t) > 1][:2]
    assert tok.decode(ids) == " ".join(tok.tokens[i][1:] for i in ids)
    with pytest.raises(TextError, match="needs sentencepiece"):
        tok.encode("go up")
