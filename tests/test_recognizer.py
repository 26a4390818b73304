"""One recognizer for both backends: the same inputs give the same text and the same error, word
for word, through a PyTorch package and its ONNX export (issue: one recognizer)."""
from __future__ import annotations

import jiwer
import numpy as np
import pytest
import soundfile as sf

from asr.audio import read_audio_with_rate, resample
from asr.cli import main
from asr.errors import ASRError


@pytest.fixture(scope="module")
def packages(tiny_model, tmp_path_factory):
    onnx = tmp_path_factory.mktemp("rec_onnx") / "onnx"
    assert main(["export", "--model", str(tiny_model["package"]), "--out", str(onnx)]) == 0
    return {"torch": tiny_model["package"], "onnx": onnx}


@pytest.fixture(scope="module")
def recognizers(packages):
    from asr.recognizer import Recognizer

    return {k: Recognizer(p) for k, p in packages.items()}


@pytest.fixture(scope="module")
def stop_now(tiny_model):
    wav = sorted((tiny_model["train"] / "wav").glob("*u3.wav"))[0]  # "stop now"
    return read_audio_with_rate(wav)


def _outcome(rec, audio, **kw):
    try:
        return ("text", rec.transcribe(audio, **kw))
    except ASRError as e:
        return (type(e).__name__, str(e))


def test_one_class_for_both_package_kinds(packages, recognizers):
    import asr
    from asr.recognizer import Recognizer

    for kind, p in packages.items():
        m = asr.load_model(p)
        assert type(m) is Recognizer and m.backend_kind == kind
    assert recognizers["torch"].info == recognizers["onnx"].info


def test_same_text_and_same_errors_through_both_backends(recognizers, stop_now, tmp_path):
    x, sr = stop_now
    y48 = resample(x, sr, 48000)
    stereo = tmp_path / "stereo48.flac"
    sf.write(stereo, np.stack([y48 * 0.8, y48 * 1.2], axis=1), 48000, format="FLAC")
    narrow = tmp_path / "u8k.wav"
    sf.write(narrow, resample(x, sr, 8000), 8000)
    long = tmp_path / "long.flac"  # 75 s: the utterance, 70 s of silence, the utterance again
    sf.write(long, np.concatenate([x, np.zeros(70 * sr, np.float32), x]), sr, format="FLAC")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), sr)
    nan = x.copy()
    nan[100] = np.nan
    cases = {
        "file": ((tmp_path / "u.wav", sf.write(tmp_path / "u.wav", x, sr))[0], {}),
        "array": (x, {"sample_rate": sr}),
        "stereo array (samples, channels)": (np.stack([x, x], axis=1), {"sample_rate": sr}),
        "stereo array (channels, samples)": (np.stack([x, x]), {"sample_rate": sr}),
        "stereo 48 kHz file": (stereo, {}),
        "8 kHz file": (narrow, {}),
        "48 kHz array": (y48, {"sample_rate": 48000}),
        "long file": (long, {}),
        "missing file": (tmp_path / "nowhere.wav", {}),
        "empty file": (empty, {}),
        "empty array": (np.zeros(0, np.float32), {"sample_rate": sr}),
        "NaN array": (nan, {"sample_rate": sr}),
        "array without rate": (x, {}),
        "3-D array": (x.reshape(1, 1, -1), {"sample_rate": sr}),
    }
    results = {name: {k: _outcome(r, a, **kw) for k, r in recognizers.items()} for name, (a, kw) in cases.items()}
    for name, got in results.items():
        assert got["torch"] == got["onnx"], name
    kind, text = results["file"]["torch"]
    assert kind == "text" and jiwer.cer("stop now", text) <= 0.25, text  # random output has CER >= 0.9
    assert results["array"]["torch"] == results["file"]["torch"]
    assert results["long file"]["torch"] == ("text", f"{text} {text}")
    for name in ("missing file", "empty file", "empty array", "NaN array", "array without rate", "3-D array"):
        assert results[name]["torch"][0] == "AudioError", (name, results[name])
    assert "nowhere.wav" in results["missing file"]["torch"][1]
    assert "sample_rate" in results["array without rate"]["torch"][1]
    assert "NaN" in results["NaN array"]["torch"][1]


def test_batch_and_long_segments_agree_across_backends(recognizers, stop_now):
    x, sr = stop_now
    xs = [x, x[: len(x) // 2], np.concatenate([x, np.zeros(sr, np.float32)])]
    texts = {k: r.transcribe_batch(xs, sr) for k, r in recognizers.items()}
    assert texts["torch"] == texts["onnx"]
    assert texts["torch"] == [r for r in (recognizers["torch"].transcribe(a, sr) for a in xs)]
    sig = np.concatenate([np.zeros(sr, np.float32), x, np.zeros(2 * sr, np.float32), x])
    segs = {k: [(round(s.start, 2), round(s.end, 2), s.text) for s in r.transcribe_long(sig, sr)]
            for k, r in recognizers.items()}
    assert segs["torch"] == segs["onnx"]
    assert len(segs["torch"]) == 2  # two utterances, each close to its words (VAD cuts differ from the file's)
    assert all(jiwer.cer("stop now", s[2]) <= 0.25 for s in segs["torch"]), segs


def test_decode_overrides_replace_package_settings(packages):
    from asr.errors import ModelPackageError
    from asr.recognizer import Recognizer

    rec = Recognizer(packages["onnx"], method="beam", beam=3)
    assert (rec.decode_config.method, rec.decode_config.beam) == ("beam", 3)
    assert Recognizer(packages["torch"], method="beam", beam=3).decode_config == rec.decode_config
    with pytest.raises(TypeError):
        Recognizer(packages["onnx"], beem=3)
    with pytest.raises(ModelPackageError, match="runtime.json"):
        Recognizer(packages["torch"], backend="onnx")  # a PyTorch package has no ONNX graph
    with pytest.raises(ModelPackageError, match="backend"):
        Recognizer(packages["onnx"], backend="tensorflow")


@pytest.mark.slow
def test_runtime_installs_and_transcribes_without_torch(packages, recognizers, stop_now, tmp_path):
    """`pip install .` (base dependencies only) into a fresh venv gives a working `asr transcribe`
    and `asr.transcribe` for an ONNX package, with neither torch nor the training extras present."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import shutil

    repo = Path(__file__).resolve().parents[1]
    src = tmp_path / "src"  # a copy: building the wheel writes build/ beside the sources
    shutil.copytree(repo / "asr", src / "asr", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, src / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(src)],
                       capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                            env=env, check=True).stdout.lower()
    for heavy in ("torch", "torchaudio", "librosa", "jiwer", "onnx=", "pyyaml", "num2words"):
        assert f"\n{heavy}" not in "\n" + listed, f"{heavy} installed by the base dependencies:\n{listed}"
    x, sr = stop_now
    wav = tmp_path / "u.wav"
    sf.write(wav, x, sr)
    want = recognizers["onnx"].transcribe(wav)
    assert jiwer.cer("stop now", want) <= 0.25, want
    cwd = tmp_path  # not the repository: the installed package must be the one imported
    r = subprocess.run([str(venv / "bin" / "asr"), "transcribe", "--model", str(packages["onnx"]), str(wav)],
                       capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{wav}\t{want}"
    code = ("import sys, asr\n"
            f"print(asr.transcribe({str(wav)!r}, model={str(packages['onnx'])!r}))\n"
            "assert 'torch' not in sys.modules\n"
            "import importlib.util; assert importlib.util.find_spec('torch') is None\n")
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == want
    # without --model (and without $ASR_MODEL) the installed package's shipped model answers
    from asr import pretrained
    from asr.recognizer import Recognizer

    if pretrained.pretrained_dir() is not None:
        env_no_model = {k: v for k, v in env.items() if k != "ASR_MODEL"}
        r = subprocess.run([str(venv / "bin" / "asr"), "transcribe", str(wav)], capture_output=True, text=True,
                           env=env_no_model, cwd=cwd, timeout=300)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"{wav}\t{Recognizer(pretrained.pretrained_dir()).transcribe(wav)}"
    # a PyTorch package says what to install instead of failing with ImportError
    r = subprocess.run([str(venv / "bin" / "asr"), "transcribe", "--model", str(packages["torch"]), str(wav)],
                       capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert r.returncode == 1 and "asr[train]" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_decode_takes_conf_and_section_overrides(packages, tiny_model, tmp_path, capsys):
    """`asr decode` takes its settings like the other commands: --conf YAML, `-- --decode.KEY VALUE`
    overrides, then the flags; through either backend; bad keys and values are refused up front."""
    import json

    conf = tmp_path / "decode.yaml"
    conf.write_text("method: beam\nbeam: 5\nuse_lm: false\n")
    for kind, pkg in packages.items():
        out = tmp_path / f"dec_{kind}"
        assert main(["decode", "--model", str(pkg), "--data", str(tiny_model["dev"]), "--out", str(out),
                     "--conf", str(conf), "--beam", "4", "--", "--decode.nbest", "2"]) == 0
        stats = json.loads((out / "decode_stats.json").read_text())
        assert (stats["method"], stats["beam"], stats["lm"]) == ("beam", 4, False)
    assert (tmp_path / "dec_torch" / "hyp").read_text() == (tmp_path / "dec_onnx" / "hyp").read_text()
    capsys.readouterr()
    for bad, words in ((["--", "--decode.beem", "3"], "beem"), (["--", "--decode.beam", "0"], "beam"),
                       (["--", "--train.lr", "1"], "section")):
        assert main(["decode", "--model", str(packages["onnx"]), "--data", str(tiny_model["dev"]),
                     "--out", str(tmp_path / "bad"), *bad]) == 1
        err = capsys.readouterr().err
        assert "error:" in err and words in err, err
        assert not (tmp_path / "bad").exists()


def test_training_dither_in_features_yaml_is_not_applied_when_recognizing(packages, recognizers, stop_now, tmp_path):
    """A package trained on dithered features carries dither > 0 in features.yaml: the torch backend
    must not add noise when recognising (the ONNX runtime never does), so features stay the same."""
    import shutil

    import yaml

    from asr.recognizer import Recognizer

    pkg = tmp_path / "dithered"
    shutil.copytree(packages["torch"], pkg)
    fy = yaml.safe_load((pkg / "features.yaml").read_text())
    fy["dither"] = 1.0
    (pkg / "features.yaml").write_text(yaml.safe_dump(fy))
    from asr.package import write_manifest

    write_manifest(pkg)
    x, sr = stop_now
    x = resample(x, sr, recognizers["torch"].sample_rate)
    rec = Recognizer(pkg)
    ref = recognizers["torch"].acoustic.features(x)
    assert np.array_equal(rec.acoustic.features(x), ref)
    assert np.allclose(recognizers["onnx"].acoustic.features(x), ref, atol=1e-3)
    sr16 = recognizers["torch"].sample_rate
    assert rec.transcribe(x, sample_rate=sr16) == recognizers["torch"].transcribe(x, sample_rate=sr16)
