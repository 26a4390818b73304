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
