"""Torch-free runtime: numpy features vs torch, Recognizer vs the PyTorch model, no torch import,
long-audio segmentation with timestamps."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _runtime_helpers import exported_package, make_package

ROOT = Path(__file__).resolve().parents[1]


def _speechlike(seconds=2.0, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    x = 0.3 * np.sin(2 * np.pi * 220 * t * (1 + t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


# the numpy front end vs asr.features.FeatureExtractor (torch); kaldi_fbank's torch path is float32
TOLERANCE = {"fbank": 1e-4, "mfcc": 1e-3, "kaldi_fbank": 1e-3}


@pytest.mark.parametrize("kind", ["fbank", "mfcc", "kaldi_fbank"])
def test_numpy_features_match_torch(kind):
    from asr.features import FeatureConfig, FeatureExtractor, feature_matrices
    from asr.runtime.features import FeatureSpec, NumpyFeatures, StreamingFeatures

    fc = FeatureConfig(kind=kind, n_mels=40, n_mfcc=20)
    m = feature_matrices(fc)
    nf = NumpyFeatures(FeatureSpec.from_dict(dataclasses.asdict(fc)), m["window"], m["mel"], m.get("dct"))
    for n in (16000 * 2, 399, 400, 401, 161, 37):
        y = _speechlike(n / 16000)
        a, b = nf.compute(y), FeatureExtractor(fc).compute(y)
        assert a.shape == b.shape, (n, a.shape, b.shape)
        if a.size:
            assert np.abs(a - b).max() < TOLERANCE[kind] * max(1.0, np.abs(b).max() / 10)
    # streaming: any chunking gives exactly the whole-signal frames
    y = _speechlike(1.3)
    whole = nf.compute(y)
    rng = np.random.default_rng(0)
    sf = StreamingFeatures(nf)
    parts, pos = [], 0
    while pos < len(y):
        k = int(rng.integers(1, 2500))
        parts.append(sf.accept(y[pos:pos + k]))
        pos += k
    parts.append(sf.finish())
    assert np.array_equal(np.concatenate(parts), whole)


@pytest.fixture(scope="module")
def bi_pkg(tmp_path_factory):
    return exported_package(tmp_path_factory.mktemp("rt_bi"), bidirectional=True)


def test_recognizer_matches_pytorch(bi_pkg):
    import torch

    from asr.export import load_acoustic
    from asr.features import CMVN, FeatureExtractor, load_feature_config
    from asr.runtime import Recognizer
    from asr.decode.greedy import greedy_decode

    pkg = bi_pkg.parent / "pkg"
    model, _ = load_acoustic(pkg)
    fe = FeatureExtractor(load_feature_config(pkg / "features.yaml"))
    cmvn = CMVN.load(pkg / "cmvn.npz")
    rec = Recognizer(bi_pkg, threads=1)
    for seconds in (0.05, 1.0, 3.7):
        x = _speechlike(seconds, seed=int(seconds * 10))
        with torch.no_grad():
            f = torch.from_numpy(cmvn.apply(fe.compute(x)))[None]
            ref = model(f, torch.tensor([f.shape[1]]))[0][0].numpy()
        lp = rec.log_probs(x)
        assert lp.shape == ref.shape
        assert np.abs(lp - ref).max() < 1e-3
        assert rec.transcribe(x) == rec.tokens.decode(greedy_decode(ref)[0])
    # a padded batch of different lengths gives the per-utterance results
    xs = [_speechlike(s, seed=i) for i, s in enumerate((0.5, 2.0, 1.1))]
    assert rec.transcribe_batch(xs) == [rec.transcribe(x) for x in xs]
    # other sample rates are resampled
    assert isinstance(rec.transcribe(_speechlike(1.0)[::2].copy(), sample_rate=8000), str)


def test_beam_decoder_runs(bi_pkg):
    from asr.runtime import Recognizer

    rec = Recognizer(bi_pkg, decoder="beam", beam=4)
    assert isinstance(rec.transcribe(_speechlike(1.0)), str)


def test_runtime_never_imports_torch(bi_pkg, tmp_path):
    from asr.audio import write_wav

    wav = tmp_path / "a.wav"
    write_wav(wav, _speechlike(1.0), 16000)
    code = (
        "import sys\n"
        "from asr.runtime import Recognizer, Stream\n"
        f"r = Recognizer({str(bi_pkg)!r})\n"
        f"t = r.transcribe({str(wav)!r})\n"
        f"segs = r.transcribe_long({str(wav)!r})\n"
        "s = Stream(r); import numpy as np\n"
        "ev = s.accept(np.zeros(8000, np.float32)) + s.finish()\n"
        "import asr.api\n"  # the API module itself is importable without torch too
        "assert 'torch' not in sys.modules, [m for m in sys.modules if m.startswith('torch')]\n"
        "print('OK', repr(t))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK")


def test_api_transcribe_with_onnx_package(bi_pkg, tmp_path):
    import asr
    from asr.api import transcribe
    from asr.audio import write_wav

    wav = tmp_path / "a.wav"
    write_wav(wav, _speechlike(1.0), 16000)
    assert isinstance(transcribe(wav, model=bi_pkg), str)


def test_recognizer_long_file_in_pieces(bi_pkg, tmp_path, monkeypatch):
    """Any length: the runtime reads a long file in blocks and decodes the 30 s pieces that
    split_points cuts from the whole signal, one at a time."""
    import asr.audio
    from asr.audio import write_wav
    from asr.runtime import Recognizer
    from asr.segment import split_points

    rec = Recognizer(bi_pkg, threads=1)
    x = np.concatenate([_speechlike(3.0, seed=s) if s % 2 else np.zeros(16000 * 9, np.float32)
                        for s in range(16)])  # 96 s
    wav = tmp_path / "long.wav"
    write_wav(wav, x, 16000)
    x = asr.audio.read_audio(wav, 16000)  # the 16-bit samples
    want = " ".join(t for t in (rec.transcribe(x[a:b]) for a, b in split_points(x, 16000, 30.0)) if t)
    assert len(split_points(x, 16000, 30.0)) >= 4
    seen = []
    log_probs = Recognizer.log_probs
    monkeypatch.setattr(Recognizer, "log_probs", lambda self, a: seen.append(len(a)) or log_probs(self, a))
    monkeypatch.setattr(asr.audio, "read_audio", lambda *a, **k: (_ for _ in ()).throw(AssertionError("whole read")))
    assert rec.transcribe(wav) == want
    assert max(seen) <= 30 * 16000 and sum(seen) == len(x)


def test_segmenter_timestamps():
    from asr.runtime.vad import segment_audio

    sr = 16000
    rng = np.random.default_rng(0)
    parts, truth, pos = [], [], 0
    for dur, sil in [(1.0, 0.8), (0.6, 1.5), (2.0, 0.5)]:
        s = np.zeros(int(sil * sr), np.float32)
        v = (0.2 * rng.standard_normal(int(dur * sr))).astype(np.float32)
        parts += [s, v]
        truth.append(((pos + len(s)) / sr, (pos + len(s) + len(v)) / sr))
        pos += len(s) + len(v)
    parts.append(np.zeros(sr // 2, np.float32))
    x = np.concatenate(parts) + (1e-4 * rng.standard_normal(pos + sr // 2)).astype(np.float32)
    segs = segment_audio(x, sr)
    assert len(segs) == 3
    for s, (a, b) in zip(segs, truth):
        st, en = s.times(sr)
        assert a - 0.25 <= st <= a and b <= en <= b + 0.25, (st, en, a, b)
        assert len(s.audio) == s.end - s.start
    # a long stretch without pauses is cut at max_segment (bounded memory)
    long = (0.2 * rng.standard_normal(sr * 12)).astype(np.float32)
    segs = segment_audio(long, sr, max_segment=5.0)
    assert all(len(s.audio) <= 5 * sr for s in segs) and len(segs) >= 3
    assert segs[0].start == 0 and sum(len(s.audio) for s in segs) >= len(long) - sr
