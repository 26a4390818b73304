"""ONNX export: dynamic batch/time parity with PyTorch, streaming graph, int8, runtime package."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _runtime_helpers import exported_package, make_package


@pytest.fixture(scope="module")
def bi_pkg(tmp_path_factory):
    return exported_package(tmp_path_factory.mktemp("bi"), bidirectional=True, int8=True)


@pytest.fixture(scope="module")
def uni_pkg(tmp_path_factory):
    return exported_package(tmp_path_factory.mktemp("uni"), bidirectional=False, int8=True)


def test_export_report_parity(bi_pkg):
    rep = json.loads((bi_pkg / "export_report.json").read_text())
    assert rep["model"]["checker"] == "ok"
    cases = rep["parity"]["cases"]
    assert {c["frames"] for c in cases} == {7, 50, 333, 1000}
    assert {c["batch"] for c in cases} == {1, 3}
    # batch 3 uses three different lengths: the exported sequence_lens keeps each utterance exact
    assert any(len(set(c["lengths"])) == 3 for c in cases)
    assert rep["parity"]["max_abs_diff"] < 1e-4
    assert rep["parity"]["greedy_agree"]
    assert rep["int8"]["size_ratio"] < 0.6
    assert rep["int8"]["agreement"]["argmax_frame_agreement"] > 0.9


def test_runtime_package_contents(bi_pkg):
    names = {p.name for p in bi_pkg.iterdir()}
    for need in ("model.onnx", "model.int8.onnx", "tokens.txt", "features.yaml", "cmvn.npz", "decode.yaml",
                 "feat_window.npy", "feat_mel.npy", "runtime.json", "package.json", "export_report.json"):
        assert need in names, need
    assert "stream.onnx" not in names  # BiLSTM: no streaming graph
    from asr.package import check_package

    info = check_package(bi_pkg)  # hashes verified
    assert info.has_onnx_model and not info.has_torch_model


def test_streaming_graph_chunked_equals_whole(uni_pkg):
    rep = json.loads((uni_pkg / "export_report.json").read_text())
    st = rep["stream"]["parity_chunked"]
    assert st["out_frames"] == st["ref_frames"]
    assert st["max_abs_diff"] < 1e-4 and st["greedy_agree"]
    assert (uni_pkg / "stream.onnx").is_file() and (uni_pkg / "stream.int8.onnx").is_file()


@pytest.mark.parametrize("subsampling", [1, 3])
def test_other_subsampling_parity_offline_and_streaming(tmp_path, subsampling):
    """x1 and x3 front ends (x4 is the fixtures', x2 the recipe tests'): exact offline parity with PyTorch at every test
    length and batch, and a chunked stream equal to the whole utterance."""
    for bidirectional in (True, False):
        out = exported_package(tmp_path / f"b{int(bidirectional)}", bidirectional=bidirectional,
                               subsampling=subsampling)
        rep = json.loads((out / "export_report.json").read_text())
        assert rep["parity"]["max_abs_diff"] < 1e-4 and rep["parity"]["greedy_agree"]
        assert json.loads((out / "runtime.json").read_text())["model"]["subsampling"] == subsampling
        if not bidirectional:
            st = rep["stream"]["parity_chunked"]
            assert st["out_frames"] == st["ref_frames"]
            assert st["max_abs_diff"] < 1e-4 and st["greedy_agree"]


def test_dynamic_shapes_in_onnxruntime(bi_pkg):
    import onnxruntime as ort

    s = ort.InferenceSession(str(bi_pkg / "model.onnx"), providers=["CPUExecutionProvider"])
    for b, t in [(1, 7), (2, 1234), (5, 64)]:
        x = np.random.default_rng(t).standard_normal((b, t, 40)).astype(np.float32)
        lp, n = s.run(None, {"feats": x, "lengths": np.full(b, t, np.int64)})
        assert lp.shape[:2] == (b, (t - 7) // 4 + 1) and (n == lp.shape[1]).all()
        assert np.allclose(np.exp(lp).sum(-1), 1.0, atol=1e-4)


def test_cli_export_and_lm_missing_is_fine(tmp_path):
    from asr.cli import main

    make_package(tmp_path / "pkg", bidirectional=True, hidden=16, layers=1, feat_kind="mfcc")
    assert main(["export", "--model", str(tmp_path / "pkg"), "--out", str(tmp_path / "onnx")]) == 0
    rt = json.loads((tmp_path / "onnx" / "runtime.json").read_text())
    assert rt["features"]["kind"] == "mfcc" and (tmp_path / "onnx" / "feat_dct.npy").is_file()
    assert not (tmp_path / "onnx" / "lm.onnx").exists()


def test_export_errors_name_the_problem(bi_pkg, tmp_path):
    from asr.errors import ModelPackageError
    from asr.export import export_package

    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelPackageError, match="empty is not a model package: package.json is missing"):
        export_package(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ModelPackageError, match="onnx has no model.pt"):  # an ONNX package is no export input
        export_package(bi_pkg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_dev_wer_fp32_and_int8(bi_pkg, tmp_path):
    """--dev-data: the runtime computes fp32 and int8 WER on a data dir (random model: WER ~100)."""
    from asr.audio import write_wav
    from asr.export import dev_wer

    rng = np.random.default_rng(0)
    lines, text = [], []
    for i in range(2):
        p = tmp_path / f"u{i}.wav"
        write_wav(p, (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
        lines.append(f"u{i} {p}\n")
        text.append(f"u{i} hello world\n")
    (tmp_path / "wav.scp").write_text("".join(lines))
    (tmp_path / "text").write_text("".join(text))
    (tmp_path / "utt2spk").write_text("u0 s\nu1 s\n")
    res = dev_wer(bi_pkg, tmp_path, int8=True, log=lambda *a: None)
    assert res["utterances"] == 2
    assert "wer" in res["fp32"] and "wer" in res["int8"] and "int8_minus_fp32" in res


def test_lm_export_and_beam_with_onnx_lm(tmp_path):
    import torch

    from asr.export import export_package
    from asr.models.lm import LMConfig, LSTMLM, TorchLMScorer, save_lm
    from asr.package import write_manifest
    from asr.runtime import Recognizer
    from asr.recognizer.onnx_backend import OnnxLMScorer

    make_package(tmp_path / "pkg", bidirectional=True, hidden=16, layers=1)
    torch.manual_seed(0)
    lm = LSTMLM(LMConfig(embed=16, hidden=24, layers=2, dropout=0.0), 29).eval()
    save_lm(lm, tmp_path / "pkg" / "lm.pt")
    (tmp_path / "pkg" / "decode.yaml").write_text("method: beam\nbeam: 4\nalpha: 0.5\nbeta: 1.0\nuse_lm: true\n")
    write_manifest(tmp_path / "pkg")  # the package's hashes, as `asr package --lm-exp` writes them
    rep = export_package(tmp_path / "pkg", tmp_path / "onnx", log=lambda *a: None, check_lengths=(7, 100))
    assert rep["lm"]["checker"] == "ok" and rep["lm"]["parity_max_abs_diff"] < 1e-5
    onnx_lm, torch_lm = OnnxLMScorer(tmp_path / "onnx" / "lm.onnx"), TorchLMScorer(lm)
    so, st = [onnx_lm.initial_state()] * 3, [torch_lm.initial_state()] * 3
    for toks in ([0, 0, 0], [5, 9, 1], [7, 7, 2]):
        a, so = onnx_lm.score_batch(so, np.array(toks))
        b, st = torch_lm.score_batch(st, np.array(toks))
        assert np.abs(a - b).max() < 1e-5
    rec = Recognizer(tmp_path / "onnx")
    assert rec.decode_config.method == "beam" and rec.lm is not None
    x = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    assert isinstance(rec.transcribe(x, 16000), str)


def test_failed_export_leaves_the_previous_package(tmp_path, monkeypatch):
    """A re-export that fails half-way (here: the parity check raises after model.onnx is written)
    leaves the previous package byte for byte, and no temporary folder; a good one replaces it whole."""
    from asr import export as export_mod
    from asr.package import check_package, sha256

    make_package(tmp_path / "pkg", bidirectional=True, hidden=16, layers=1)
    out = tmp_path / "onnx"
    export_mod.export_package(tmp_path / "pkg", out, log=lambda *a: None, check_lengths=(7,))
    (out / "stray.txt").write_text("a file the previous package had")
    before = {p.name: sha256(p) for p in out.iterdir()}

    def boom(*a, **k):
        raise RuntimeError("parity check exploded")

    monkeypatch.setattr(export_mod, "parity_offline", boom)
    with pytest.raises(RuntimeError, match="exploded"):
        export_mod.export_package(tmp_path / "pkg", out, log=lambda *a: None, check_lengths=(7,))
    assert {p.name: sha256(p) for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx", "pkg"]

    monkeypatch.undo()
    export_mod.export_package(tmp_path / "pkg", out, log=lambda *a: None, check_lengths=(7,))
    assert not (out / "stray.txt").exists()  # replaced whole, not merged
    check_package(out)  # every file matches package.json
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx", "pkg"]
