import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny espeak-ng corpus with features (shared by the training/decoding tests)."""
    from speech import ESPEAK, tiny_corpus

    if ESPEAK is None:
        pytest.skip("espeak-ng not installed (make deps)")
    return tiny_corpus(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_model(tiny, tmp_path_factory):
    """A model trained for seconds on the tiny corpus, packaged."""
    from asr.cli import main
    from speech import train_args

    exp = tmp_path_factory.mktemp("exp") / "am"
    assert main(train_args(tiny, exp, 60)) == 0
    pkg = exp.parent / "model"
    assert main(["package", "--exp", str(exp), "--out", str(pkg)]) == 0
    return {"exp": exp, "package": pkg, **tiny}


@pytest.fixture(scope="session")
def tiny_model_lm(tiny_model, tmp_path_factory):
    """The tiny acoustic model packaged with an LM trained for seconds on the train transcripts."""
    from asr.cli import main
    from speech import REPO

    root = tmp_path_factory.mktemp("lmpkg")
    lm_args = ["--text", str(tiny_model["train"] / "text"), "--dev-text", str(tiny_model["dev"] / "text"),
               "--utt-ids", "--tokens", str(tiny_model["tokens"])]
    assert main(["train-lm", *lm_args, "--exp", str(root / "lm"), "--conf", str(REPO / "conf/model/lm_small.yaml"),
                 "--", "--model.embed", "16", "--model.hidden", "32", "--model.layers", "1",
                 "--train.epochs", "3", "--train.threads", "1"]) == 0
    assert main(["package", "--exp", str(tiny_model["exp"]), "--lm-exp", str(root / "lm"), "--out", str(root / "pkg")]) == 0
    return {"pkg": root / "pkg", "lm_args": lm_args}
