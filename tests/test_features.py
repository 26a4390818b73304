"""Features (asr.features): librosa/Kaldi parity, CMVN, SpecAugment, speed perturbation, dump.

Parity tolerances (measured values in brackets, speech-like test signal with a near-silent part):
* log-mel ``fbank`` vs ``log(max(librosa.feature.melspectrogram(...), log_floor))``: max abs
  difference < 1e-4 over every bin (~1e-6; both compute the FFT in float64);
* ``mfcc`` vs ``librosa.feature.mfcc(S=power_to_db(mel, amin=log_floor, top_db=None))``: max abs
  difference < 1e-5 x the largest |coefficient| (~5e-7 relative; librosa's dB values are float32);
* ``kaldi_fbank`` vs ``torchaudio.compliance.kaldi.fbank`` on the int16-scaled waveform: identical;
* the documented numpy algorithm with ``feature_matrices`` vs the torch extractor: < 1e-4 (fbank/mfcc
  relative), < 2e-3 (kaldi_fbank, float32 FFT in torchaudio).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.errors import ConfigError
from speech import sine
from asr.features import (
    CMVN,
    CMVNAccumulator,
    FeatureConfig,
    FeatureExtractor,
    FreqWarp,
    SpecAugment,
    extract_features,
    feature_matrices,
    load_feature_config,
    mel_bin_centers,
    num_frames,
    speed_perturb,
    speed_perturb_datadir,
    utterance_cmvn,
)

SR = 16000
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def speechlike(seconds: float = 2.0, seed: int = 0, sr: int = SR) -> np.ndarray:
    """Harmonic 'voice' with a moving pitch and formant-ish emphasis, noise, and a quiet gap."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = np.zeros(n)
    for k in range(1, 30):
        amp = 1.0 / k * (1 + 2 * np.exp(-((k * 130 - 700) / 300) ** 2) + np.exp(-((k * 130 - 1800) / 400) ** 2))
        x += amp * np.sin(k * phase)
    x *= 0.05 * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    x += 0.003 * rng.standard_normal(n)
    x[n // 3: n // 3 + sr // 4] = 1e-4 * rng.standard_normal(sr // 4)  # near silence
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def librosa():
    return pytest.importorskip("librosa")


def _librosa_mel(librosa, x, cfg):
    return librosa.feature.melspectrogram(
        y=x, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        window="hann", center=True, pad_mode="constant", power=2.0, n_mels=cfg.n_mels, fmin=cfg.fmin,
        fmax=cfg.fmax, htk=False, norm="slaney")


CONFIGS = [
    dict(),
    dict(n_fft=400, n_mels=40, fmin=0.0, fmax=7600.0),
    dict(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=40),
]


@pytest.mark.parametrize("over", CONFIGS)
def test_fbank_matches_librosa(librosa, over):
    cfg = FeatureConfig(kind="fbank", **over)
    x = speechlike(sr=cfg.sample_rate)
    ours = FeatureExtractor(cfg).compute(x)
    ref = np.log(np.maximum(_librosa_mel(librosa, x, cfg), cfg.log_floor)).T
    assert ours.dtype == np.float32 and ours.shape == ref.shape == (num_frames(len(x), cfg), cfg.n_mels)
    assert np.abs(ours - ref).max() < 1e-4


@pytest.mark.parametrize("over", CONFIGS[:2])
def test_mfcc_matches_librosa(librosa, over):
    cfg = FeatureConfig(kind="mfcc", n_mfcc=min(40, over.get("n_mels", 80)), **over)
    x = speechlike(seed=1)
    ours = FeatureExtractor(cfg).compute(x)
    mel = _librosa_mel(librosa, x, cfg)
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, amin=cfg.log_floor, top_db=None),
                               n_mfcc=cfg.n_mfcc, dct_type=2, norm="ortho").T
    assert ours.shape == ref.shape == (num_frames(len(x), cfg), cfg.n_mfcc)
    assert np.abs(ours - ref).max() < 1e-5 * np.abs(ref).max()


def test_mel_filterbank_matches_librosa(librosa):
    cfg = FeatureConfig()
    fb = feature_matrices(cfg)["mel"]
    ref = librosa.filters.mel(sr=SR, n_fft=512, n_mels=80, fmin=20.0, htk=False, norm="slaney", dtype=np.float64).T
    np.testing.assert_allclose(fb, ref, rtol=1e-9, atol=1e-12)


def test_kaldi_fbank_equals_torchaudio():
    from torchaudio.compliance import kaldi

    cfg = FeatureConfig(kind="kaldi_fbank")
    x = speechlike(seed=2)
    ours = FeatureExtractor(cfg).compute(x)
    ref = kaldi.fbank(torch.from_numpy(x)[None] * 32768.0, num_mel_bins=80, frame_length=25.0,
                      frame_shift=10.0, low_freq=20.0, high_freq=0.0, dither=0.0, energy_floor=0.0,
                      sample_frequency=16000.0).numpy()
    assert ours.shape == ref.shape == (num_frames(len(x), cfg), 80)
    np.testing.assert_array_equal(ours, ref)


def _numpy_features(x: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The algorithm as written in the asr.features docstring, with feature_matrices()."""
    m = feature_matrices(cfg)
    x = np.asarray(x, np.float64)
    if cfg.kind == "kaldi_fbank":
        n_fft = 1 << (cfg.win_length - 1).bit_length()
        T = num_frames(len(x), cfg)
        fr = np.stack([x[t * cfg.hop_length: t * cfg.hop_length + cfg.win_length] for t in range(T)]) * 32768.0
        fr = fr - fr.mean(1, keepdims=True)
        fr = fr - 0.97 * np.concatenate([fr[:, :1], fr[:, :-1]], 1)
        power = np.abs(np.fft.rfft(fr * m["window"], n=n_fft)) ** 2
        return np.log(np.maximum(power @ m["mel"], np.finfo(np.float32).eps))
    pad = cfg.n_fft // 2
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    T = 1 + len(x) // cfg.hop_length
    fr = np.stack([xp[t * cfg.hop_length: t * cfg.hop_length + cfg.n_fft] for t in range(T)])
    mel = (np.abs(np.fft.rfft(fr * m["window"], n=cfg.n_fft)) ** 2) @ m["mel"]
    if cfg.kind == "fbank":
        return np.log(np.maximum(mel, cfg.log_floor))
    return (10 * np.log10(np.maximum(mel, cfg.log_floor))) @ m["dct"]


@pytest.mark.parametrize("kind", ["fbank", "mfcc", "kaldi_fbank"])
def test_documented_numpy_algorithm_matches(kind):
    cfg = FeatureConfig(kind=kind)
    m = feature_matrices(cfg)
    assert m["mel"].shape == ((512 if kind != "kaldi_fbank" else 512) // 2 + 1, 80)
    assert m["window"].shape == ((cfg.n_fft,) if kind != "kaldi_fbank" else (cfg.win_length,))
    assert ("dct" in m) == (kind == "mfcc")
    x = speechlike(1.0, seed=3)
    ours = FeatureExtractor(cfg).compute(x)
    ref = _numpy_features(x, cfg)
    assert ours.shape == ref.shape
    tol = 2e-3 if kind == "kaldi_fbank" else 1e-4 * max(1.0, np.abs(ref).max())
    assert np.abs(ours - ref).max() < tol


@pytest.mark.parametrize("kind", ["fbank", "mfcc", "kaldi_fbank"])
def test_num_frames_and_batch(kind):
    cfg = FeatureConfig(kind=kind)
    ext = FeatureExtractor(cfg)
    for n in [0, 1, 159, 160, 399, 400, 401, 561, 16000, 16001]:
        out = ext(torch.zeros(n) + 0.01)
        assert out.shape == (num_frames(n, cfg), cfg.dim), (kind, n)
        assert out.dtype == torch.float32
    x = torch.from_numpy(np.stack([speechlike(0.5, seed=s) for s in range(3)]))
    batch = ext(x)
    assert batch.shape == (3, num_frames(x.shape[1], cfg), cfg.dim)
    for i in range(3):
        torch.testing.assert_close(batch[i], ext(x[i]), rtol=0, atol=1e-5)


def test_float32_compute_close():
    cfg = FeatureConfig()
    x = speechlike(seed=4)
    a = FeatureExtractor(cfg).compute(x)
    b = FeatureExtractor(cfg, dtype=torch.float32).compute(x)
    assert FeatureExtractor(cfg).compute(x).tobytes() == a.tobytes()
    assert np.abs(a - b).max() < 1e-3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", ["fbank", "mfcc", "kaldi_fbank"])
def test_cuda_matches_cpu(kind):
    cfg = FeatureConfig(kind=kind)
    x = torch.from_numpy(speechlike(seed=5))
    cpu = FeatureExtractor(cfg)(x)
    gpu = FeatureExtractor(cfg).cuda()(x.cuda())
    assert gpu.is_cuda
    tol = 1e-3 if kind == "kaldi_fbank" else 1e-4 * max(1.0, cpu.abs().max().item())
    assert (gpu.cpu() - cpu).abs().max().item() < tol


def test_dither_changes_output_only_when_set():
    x = torch.from_numpy(speechlike(0.5))
    ext = FeatureExtractor(FeatureConfig())
    torch.testing.assert_close(ext(x), ext(x), rtol=0, atol=0)
    d = FeatureExtractor(FeatureConfig(dither=1.0))
    assert not torch.equal(d(x), d(x))


def test_config_yamls_and_validation(tmp_path):
    for kind in ["fbank", "mfcc", "kaldi_fbank"]:
        cfg = load_feature_config(os.path.join(REPO, "conf", "features", f"{kind}.yaml"))
        assert cfg.kind == kind
        assert cfg.dim == (40 if kind == "mfcc" else 80)
    cfg = load_feature_config(os.path.join(REPO, "conf", "features", "fbank.yaml"), {"n_mels": "40"})
    assert cfg.dim == 40
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: fbank\nn_mel: 40\n")
    with pytest.raises(ConfigError, match="n_mel"):
        load_feature_config(bad)
    with pytest.raises(ConfigError, match="win_length"):
        FeatureConfig(win_length=600)
    with pytest.raises(ConfigError, match="fmax"):
        FeatureConfig(fmax=9000.0)
    with pytest.raises(ConfigError, match="kind 'logmel'"):
        FeatureConfig(kind="logmel")
    # kaldi_fbank pads the window to the next power of two (Kaldi's round_to_power_of_two)
    assert [FeatureConfig(kind="kaldi_fbank", win_length=w).fft_size for w in (200, 256, 400, 513)] == [256, 256, 512, 1024]
    assert FeatureConfig(kind="kaldi_fbank").frame_length == 400
    assert (FeatureConfig(n_fft=400).fft_size, FeatureConfig(n_fft=400).frame_length) == (400, 400)


def test_config_cmvn_matrices_import_without_torch():
    """The runtime's share of the package (config, CMVN, matrices) loads without torch; the torch
    names are loaded on first use."""
    code = (
        "import sys\n"
        "import numpy as np\n"
        "import asr.features.config, asr.features.cmvn, asr.features.matrices, asr.runtime.features\n"
        "from asr.features import CMVN, FeatureConfig, load_feature_config, mel_bin_centers, num_frames\n"
        "assert 'torch' not in sys.modules, [m for m in sys.modules if m.startswith('torch')]\n"
        "c = CMVN(np.array([1.0, 2.0]), np.array([2.0, 4.0]))\n"
        "print(c.apply(np.array([[3.0, 10.0]], np.float32)).tolist(), num_frames(1600, FeatureConfig()))\n"
        "import asr.features\n"
        "print(asr.features.FeatureExtractor.__module__, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[[1.0, 2.0]] 11", "asr.features.extract True"]


def test_runtime_front_end_reads_the_feature_config(tmp_path):
    """The numpy front end takes the same FeatureConfig, read from runtime.json's ``features``."""
    from asr.errors import ModelPackageError
    from asr.runtime.features import NumpyFeatures

    cfg = FeatureConfig(kind="mfcc", n_mels=23, n_mfcc=13, fmax=7000.0)
    for name, arr in feature_matrices(cfg).items():
        np.save(tmp_path / f"feat_{name}.npy", arr)
    d = json.loads(json.dumps(dataclasses.asdict(cfg)))  # as runtime.json holds it
    nf = NumpyFeatures.from_package(tmp_path, d)
    assert nf.cfg == cfg
    x = speechlike(0.5)
    ref = FeatureExtractor(cfg).compute(x)
    assert nf.compute(x).shape == ref.shape == (num_frames(len(x), cfg), 13)
    np.testing.assert_allclose(nf.compute(x), ref, atol=1e-3 * np.abs(ref).max())
    with pytest.raises(ModelPackageError, match=r"runtime\.json features: unknown key.*n_mel"):
        NumpyFeatures.from_package(tmp_path, {**d, "n_mel": 40})
    with pytest.raises(ModelPackageError, match="n_mfcc"):
        NumpyFeatures.from_package(tmp_path, {**d, "n_mfcc": 30})
    os.remove(tmp_path / "feat_dct.npy")
    with pytest.raises(ModelPackageError, match="feat_dct.npy"):
        NumpyFeatures.from_package(tmp_path, d)


# ---------------------------------------------------------------------------------- CMVN


def test_cmvn_stats_equal_numpy(tmp_path):
    rng = np.random.default_rng(0)
    feats = [(rng.standard_normal((rng.integers(5, 50), 6)) * [1, 2, 3, 4, 5, 6] + 7).astype(np.float32)
             for _ in range(7)]
    acc = CMVNAccumulator()
    for f in feats[:3]:
        acc.add(f)
    acc2 = CMVNAccumulator()
    for f in feats[3:]:
        acc2.add(torch.from_numpy(f))
    acc.merge(acc2)
    cmvn = acc.compute()
    allf = np.concatenate(feats).astype(np.float64)
    np.testing.assert_allclose(cmvn.mean, allf.mean(0), rtol=1e-6)
    np.testing.assert_allclose(cmvn.std, allf.std(0), rtol=1e-5)
    assert cmvn.count == len(allf)
    path = tmp_path / "cmvn.npz"
    cmvn.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["cmvn.npz"]  # no temp files left
    with np.load(path) as z:
        assert set(z.files) == {"mean", "std", "count"}
    back = CMVN.load(path)
    np.testing.assert_array_equal(back.mean, cmvn.mean)
    np.testing.assert_array_equal(back.std, cmvn.std)
    assert back.count == cmvn.count
    normed = back.apply(allf.astype(np.float32))
    np.testing.assert_allclose(normed.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(normed.std(0), 1, atol=1e-4)
    t = back.apply(torch.from_numpy(allf.astype(np.float32)))
    np.testing.assert_allclose(t.numpy(), normed, atol=1e-6)


def test_cmvn_constant_dim_and_utterance_cmvn():
    f = np.ones((10, 3), np.float32)
    f[:, 1] = np.arange(10)
    cmvn = CMVN.from_features([f])
    assert np.isfinite(cmvn.apply(f)).all()
    u = utterance_cmvn(f * 3 + 1)
    np.testing.assert_allclose(u.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(u[:, 1].std(), 1, atol=1e-5)
    ut = utterance_cmvn(torch.from_numpy(f * 3 + 1))
    np.testing.assert_allclose(ut.numpy(), u, atol=1e-5)
    um = utterance_cmvn(f * 3 + 1, norm_vars=False)
    np.testing.assert_allclose(um[:, 1].std(), 3 * f[:, 1].std(), rtol=1e-5)


# ----------------------------------------------------------------------------- SpecAugment


def test_specaugment_masks_only_valid_region_and_eval_identity():
    B, T, F = 4, 200, 80
    x = torch.randn(B, T, F) + 10.0  # no natural zeros
    lengths = torch.tensor([200, 150, 60, 1])
    pad_value = -3.0
    for b, L in enumerate(lengths):
        x[b, L:] = pad_value
    aug = SpecAugment(freq_masks=2, freq_width=27, time_masks=2, time_width_ratio=0.2, max_time_width=40)
    aug.train()
    masked_any = False
    for seed in range(20):
        y = aug(x, lengths, generator=torch.Generator().manual_seed(seed))
        assert y.shape == x.shape
        for b, L in enumerate(lengths.tolist()):
            assert torch.equal(y[b, L:], x[b, L:])  # padding untouched
            changed = y[b, :L] != x[b, :L]
            assert (y[b, :L][changed] == 0).all()
            masked_any |= bool(changed.any())
            # time masks: at most 2 spans, each <= min(40, 0.2*L) frames
            full_rows = changed.all(dim=1).sum().item()
            assert full_rows <= 2 * min(40, int(0.2 * L)) or L == 0
    assert masked_any
    a = aug(x, lengths, generator=torch.Generator().manual_seed(7))
    b = aug(x, lengths, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    aug.eval()
    assert torch.equal(aug(x, lengths), x)


# ----------------------------------------------------------------------- frequency warping (VTLP)


def test_mel_bin_centers_match_librosa_and_torchaudio_kaldi():
    import librosa
    from torchaudio.compliance import kaldi

    cfg = FeatureConfig(n_mels=40, fmin=20.0)
    np.testing.assert_allclose(mel_bin_centers(cfg), librosa.mel_frequencies(42, fmin=20.0, fmax=8000.0)[1:-1],
                               rtol=1e-9)
    kcfg = FeatureConfig(kind="kaldi_fbank", n_mels=23, fmin=20.0)
    _, centers = kaldi.get_mel_banks(23, 512, 16000.0, 20.0, 0.0, 100.0, -500.0, 1.0)
    np.testing.assert_allclose(mel_bin_centers(kcfg), centers.double().numpy().reshape(-1), rtol=1e-5)
    # and Kaldi's HTK mel scale, 1127 ln(1 + f/700), evenly spaced between fmin and the Nyquist frequency
    htk = np.linspace(1127 * np.log1p(20.0 / 700), 1127 * np.log1p(8000.0 / 700), 25)[1:-1]
    np.testing.assert_allclose(mel_bin_centers(kcfg), 700 * np.expm1(htk / 1127), rtol=1e-5)
    with pytest.raises(ConfigError, match="cepstral"):
        mel_bin_centers(FeatureConfig(kind="mfcc"))


@pytest.mark.parametrize("freq,alpha", [(400.0, 0.9), (1000.0, 1.1), (2500.0, 0.88), (5000.0, 1.12)])
def test_freq_warp_moves_a_tone_where_librosa_puts_the_scaled_tone(freq, alpha):
    """Warping the log-mel of a tone at f by alpha gives the spectrum of a tone at alpha * f
    (librosa computes both spectra: an independent filterbank)."""
    import librosa

    def logmel(f):
        S = librosa.feature.melspectrogram(y=sine(f, 0.5, SR).astype(np.float64), sr=SR, n_fft=512, win_length=400,
                                           hop_length=160, n_mels=80, fmin=20.0)
        return np.log(S + 1e-6).T.mean(0)

    cfg = FeatureConfig()
    fw = FreqWarp(mel_bin_centers(cfg), 0.2, low_freq=cfg.fmin, high_freq=cfg.f_max)
    x = torch.tensor(logmel(freq), dtype=torch.float32)[None, None, :]
    warped = fw.warp(x, [alpha])[0, 0].numpy()
    target = logmel(alpha * freq)
    assert abs(int(warped.argmax()) - int(target.argmax())) == 0
    assert int(warped.argmax()) != int(x[0, 0].argmax())  # it did move
    top = target > target.max() - 20.0  # the tone's bins: shape agrees within a few dB
    assert np.abs(warped[top] - target[top]).max() < 6.0


def test_freq_warp_keeps_padding_cmvn_and_eval_identity():
    cfg = FeatureConfig()
    rng = np.random.default_rng(0)
    mean, std = rng.normal(-5, 2, 80), rng.uniform(0.5, 3, 80)
    fw = FreqWarp(mel_bin_centers(cfg), 0.1, mean=mean, std=std, low_freq=cfg.fmin, high_freq=cfg.f_max)
    x = torch.randn(3, 50, 80)
    lengths = torch.tensor([50, 20, 1])
    x[1, 20:] = 0.0
    x[2, 1:] = 0.0
    # alpha 1 is the identity, also through the CMVN round trip
    torch.testing.assert_close(fw.warp(x, [1.0, 1.0, 1.0], lengths), x, atol=1e-4, rtol=1e-5)
    fw.train()
    y = fw(x, lengths, generator=torch.Generator().manual_seed(3))
    assert torch.equal(y[1, 20:], x[1, 20:]) and torch.equal(y[2, 1:], x[2, 1:])
    assert not torch.allclose(y[0], x[0], atol=1e-2)
    assert torch.equal(y, fw(x, lengths, generator=torch.Generator().manual_seed(3)))
    # the warp is applied to the log-mel values, not the normalised ones
    raw = x * torch.tensor(std, dtype=torch.float32) + torch.tensor(mean, dtype=torch.float32)
    plain = FreqWarp(mel_bin_centers(cfg), 0.1, low_freq=cfg.fmin, high_freq=cfg.f_max)
    expect = (plain.warp(raw, [0.93, 1.0, 1.0]) - torch.tensor(mean, dtype=torch.float32)) / torch.tensor(std, dtype=torch.float32)
    torch.testing.assert_close(fw.warp(x, [0.93, 1.0, 1.0])[0], expect[0], atol=1e-4, rtol=1e-4)
    fw.eval()
    assert torch.equal(fw(x, lengths), x)
    with pytest.raises(ConfigError, match="max_warp"):
        FreqWarp(mel_bin_centers(cfg), 0.6)


# ----------------------------------------------------------------------- speed perturbation


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturb_duration_and_pitch(factor):
    n = SR * 2
    t = np.arange(n) / SR
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = speed_perturb(x, SR, factor)
    assert y.dtype == np.float32
    assert abs(len(y) - n / factor) <= 1
    spec = np.abs(np.fft.rfft(y[2000:-2000] * np.hanning(len(y) - 4000)))
    peak_hz = np.argmax(spec) * SR / (len(y) - 4000)
    assert abs(peak_hz - 440 * factor) < 3
    np.testing.assert_array_equal(speed_perturb(x, SR, 1.0), x)
    with pytest.raises(ConfigError, match="speed factor must be > 0"):
        speed_perturb(x, SR, 0.0)


def _write_datadir(root, n=4, segments=False):
    root.mkdir(parents=True, exist_ok=True)
    wav_dir = root.parent / (root.name + "_wav")
    wav_dir.mkdir(exist_ok=True)
    wav, text, spk, seg = [], [], [], []
    for i in range(n):
        x = speechlike(0.6 + 0.13 * i, seed=10 + i)
        p = wav_dir / f"r{i}.wav"
        sf.write(p, x, SR, subtype="FLOAT")
        if segments:
            wav.append(f"r{i} {p}")
            seg += [f"u{i}a r{i} 0.0 0.3", f"u{i}b r{i} 0.25 -1"]
            spk += [f"u{i}a s{i % 2}", f"u{i}b s{i % 2}"]
            text += [f"u{i}a hello", f"u{i}b world"]
        else:
            wav.append(f"u{i} {p}")
            spk.append(f"u{i} s{i % 2}")
            text.append(f"u{i} hello world {i}")
    (root / "wav.scp").write_text("\n".join(wav) + "\n")
    (root / "utt2spk").write_text("\n".join(sorted(spk)) + "\n")
    (root / "text").write_text("\n".join(sorted(text)) + "\n")
    if segments:
        (root / "segments").write_text("\n".join(sorted(seg)) + "\n")
    return root


def test_speed_perturb_datadir(tmp_path):
    from asr.data.datadir import DataDir

    src = _write_datadir(tmp_path / "data")
    dst = speed_perturb_datadir(src, tmp_path / "data_sp", factors=(0.9, 1.0, 1.1))
    dd = DataDir.load(dst)
    assert len(dd.utt_ids) == 12
    assert dd.utt2spk["sp0.9-u1"] == "sp0.9-s1" and dd.utt2spk["u1"] == "s1"
    assert dd.text["sp1.1-u2"] == dd.text["u2"] == "hello world 2"
    assert (dst / "spk2utt").is_file()
    durs = dd.durations()
    for i in range(4):
        d = durs[f"u{i}"]
        assert abs(durs[f"sp0.9-u{i}"] - d / 0.9) < 2e-3
        assert abs(durs[f"sp1.1-u{i}"] - d / 1.1) < 2e-3
    assert (dst / "wav" / "sp0.9-u0.wav").is_file()
    assert not (dst / "wav" / "u0.wav").exists()  # factor 1.0 reuses the original audio
    mtime = (dst / "wav" / "sp0.9-u0.wav").stat().st_mtime_ns
    speed_perturb_datadir(src, dst, factors=(0.9, 1.0, 1.1))  # rerun reuses wavs
    assert (dst / "wav" / "sp0.9-u0.wav").stat().st_mtime_ns == mtime
    with pytest.raises(ConfigError, match="give the same id 'sp1.1-u0' twice"):
        speed_perturb_datadir(src, tmp_path / "dup", factors=(1.1, 1.1))


def test_speed_perturb_datadir_with_segments(tmp_path):
    from asr.data.datadir import DataDir

    src = _write_datadir(tmp_path / "data", n=2, segments=True)
    dst = speed_perturb_datadir(src, tmp_path / "sp", factors=(1.0, 1.1))
    dd = DataDir.load(dst)
    assert dd.segments is None and len(dd.utt_ids) == 8
    durs = dd.durations()
    assert abs(durs["u0a"] - 0.3) < 1e-3 and abs(durs["sp1.1-u0a"] - 0.3 / 1.1) < 1e-3


# ------------------------------------------------------------------------------ feature dump


def _snapshot(folder):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def test_extract_features_resumes_and_counts(tmp_path):
    from asr.data.datadir import DataDir, read_kaldi_map

    data = _write_datadir(tmp_path / "data", n=5)
    dump = tmp_path / "dump"
    cfg = FeatureConfig()
    s1 = extract_features(data, dump, cfg, cmvn_out=data / "cmvn.npz", progress=False)
    assert s1["computed"] == 5 and s1["skipped"] == 0
    snap = _snapshot(dump)
    cmvn_bytes = (data / "cmvn.npz").read_bytes()
    s2 = extract_features(data, dump, cfg, cmvn_out=data / "cmvn.npz", progress=False)
    assert s2["computed"] == 0 and s2["skipped"] == 5 and s2["frames"] == s1["frames"]
    assert _snapshot(dump) == snap  # nothing rewritten
    np.testing.assert_array_equal(CMVN.load(data / "cmvn.npz").mean, np.load(io_bytes(cmvn_bytes))["mean"])

    scp = read_kaldi_map(data / "feats.scp")
    n2f = read_kaldi_map(data / "utt2num_frames")
    dd = DataDir.load(data)
    ext = FeatureExtractor(cfg)
    all_feats = []
    for utt in dd.utt_ids:
        f = np.load(scp[utt])
        assert os.path.isabs(scp[utt]) and f.dtype == np.float32 and f.shape[1] == 80
        audio = dd.audio(utt)
        assert f.shape[0] == int(n2f[utt]) == num_frames(len(audio), cfg)
        np.testing.assert_array_equal(f, ext.compute(audio))
        all_feats.append(f)
    cmvn = CMVN.load(data / "cmvn.npz")
    cat = np.concatenate(all_feats).astype(np.float64)
    np.testing.assert_allclose(cmvn.mean, cat.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cmvn.std, cat.std(0), rtol=1e-5)
    assert load_feature_config(data / "feats.yaml") == cfg

    # a partial dump (one file lost) recomputes just that one, with two workers
    os.remove(scp["u3"])
    s3 = extract_features(data, dump, cfg, nj=2, progress=False)
    assert (s3["computed"], s3["skipped"]) == (1, 4)
    np.testing.assert_array_equal(np.load(scp["u3"]), all_feats[3])

    with pytest.raises(ConfigError, match="different config"):
        extract_features(data, dump, FeatureConfig(n_mels=40), progress=False)


def io_bytes(b):
    import io

    return io.BytesIO(b)


def test_extract_features_parallel_equals_serial_and_segments(tmp_path):
    data = _write_datadir(tmp_path / "data", n=3, segments=True)
    cfg = FeatureConfig(kind="mfcc")
    extract_features(data, tmp_path / "d1", cfg, cmvn_out=tmp_path / "c1.npz", nj=1, progress=False)
    f1 = {p.name: np.load(p) for p in (tmp_path / "d1").glob("*.npy")}
    extract_features(data, tmp_path / "d2", cfg, cmvn_out=tmp_path / "c2.npz", nj=2, progress=False)
    f2 = {p.name: np.load(p) for p in (tmp_path / "d2").glob("*.npy")}
    assert sorted(f1) == sorted(f2) == sorted(f"u{i}{s}.npy" for i in range(3) for s in "ab")
    for k in f1:
        np.testing.assert_array_equal(f1[k], f2[k])
    np.testing.assert_allclose(CMVN.load(tmp_path / "c1.npz").mean, CMVN.load(tmp_path / "c2.npz").mean, rtol=1e-6)
    # segment u0a is 0.0-0.3 s of r0
    assert f1["u0a.npy"].shape[0] == num_frames(int(0.3 * SR), cfg)


def test_extract_features_cli(tmp_path, capsys):
    from asr.cli import main

    data = _write_datadir(tmp_path / "data", n=2)
    conf = os.path.join(REPO, "conf", "features", "fbank.yaml")
    rc = main(["extract-features", "--data", str(data), "--dump", str(tmp_path / "dump"), "--conf", conf,
               "--cmvn-out", str(tmp_path / "cmvn.npz"), "--feat.n_mels", "40", "--no-progress"])
    assert rc == 0
    assert "2 computed" in capsys.readouterr().err
    assert np.load(tmp_path / "dump" / "u0.npy").shape[1] == 40
    assert CMVN.load(tmp_path / "cmvn.npz").dim == 40
    rc = main(["extract-features", "--data", str(data), "--dump", str(tmp_path / "dump"), "--conf", conf,
               "--feat.n_mels", "40", "--no-progress"])
    assert rc == 0 and "2 already there and skipped" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # argparse: unknown override
        main(["extract-features", "--data", str(data), "--dump", str(tmp_path / "dump2"), "--feat.n_melz", "40"])
    assert e.value.code == 2
    rc = main(["extract-features", "--data", str(data), "--dump", str(tmp_path / "dump3"), "--feat.n_mels", "x"])
    assert rc == 1 and "n_mels" in capsys.readouterr().err


def test_extract_features_reports_bad_audio(tmp_path):
    from asr.errors import AudioError

    data = _write_datadir(tmp_path / "data", n=2)
    (tmp_path / "data_wav" / "r1.wav").write_bytes(b"not audio")
    with pytest.raises(AudioError, match="u1"):
        extract_features(data, tmp_path / "dump", FeatureConfig(), progress=False)
    assert (tmp_path / "dump" / "u0.npy").is_file()  # the good one is kept for the rerun


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_specaugment_cuda_matches_cpu():
    x = torch.randn(3, 120, 40) + 5.0
    lengths = torch.tensor([120, 80, 30])
    aug = SpecAugment(time_width_ratio=0.2).train()
    cpu = aug(x, lengths, generator=torch.Generator().manual_seed(3))
    gpu = aug(x.cuda(), lengths.cuda(), generator=torch.Generator().manual_seed(3))
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)
