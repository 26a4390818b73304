"""Features on the fly (train.on_the_fly) and on-the-fly noise/reverb (train.noise_prob, reverb_prob):
the same features as the dump, in-process and in DataLoader workers; added noise at the drawn SNR;
draws seeded by (seed, epoch, utterance); the trainer CLI end to end; `asr speed-perturb`."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.audio import write_wav
from asr.errors import ConfigError

SR = 16000


def make_datadir(root, n=6, seed=0):
    """Harmonic tones with noise (0.4-1.2 s), transcripts of letters."""
    rng = np.random.default_rng(seed)
    (root / "wav").mkdir(parents=True)
    wav, text, u2s = [], [], []
    for i in range(n):
        dur = float(rng.uniform(0.4, 1.2))
        t = np.arange(int(dur * SR)) / SR
        f0 = rng.uniform(100, 250)
        x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * 0.1
        x = (x * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.003 * rng.standard_normal(t.size)).astype(np.float32)
        utt = f"spk{i % 2}-u{i}"
        write_wav(root / "wav" / f"{utt}.wav", x, SR)
        wav.append(f"{utt} {root / 'wav' / (utt + '.wav')}")
        text.append(f"{utt} " + "abc d"[: 1 + i % 5])
        u2s.append(f"{utt} spk{i % 2}")
    for name, lines in (("wav.scp", wav), ("text", text), ("utt2spk", u2s)):
        (root / name).write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from asr.data.prepare import prepare_datadir

    root = make_datadir(tmp_path_factory.mktemp("otf") / "train")
    prepare_datadir(root)
    return root


def _dumped(data, tmp_path, cfg):
    from asr.features import CMVN, extract_features

    extract_features(data, tmp_path / "dump", cfg, cmvn_out=tmp_path / "cmvn.npz", progress=False)
    return CMVN.load(tmp_path / "cmvn.npz")


@pytest.mark.parametrize("kind,workers", [("fbank", 0), ("fbank", 2), ("kaldi_fbank", 0), ("mfcc", 0)])
def test_on_the_fly_features_equal_the_dump(data, tmp_path, kind, workers):
    import shutil

    from asr.data.dataset import AudioDataset, FeatureDataset, bucket_batches, iter_batches
    from asr.features import FeatureConfig
    from asr.text import CharTokenizer

    d = tmp_path / "data"
    shutil.copytree(data, d)
    cfg = FeatureConfig(kind=kind, n_mels=40, n_mfcc=13)
    cmvn = _dumped(d, tmp_path, cfg)
    dumped = FeatureDataset(d, CharTokenizer(), cmvn)
    otf = AudioDataset(d, CharTokenizer(), cfg, cmvn)
    assert [u.utt for u in otf.items] == [u.utt for u in dumped.items]
    assert otf.lengths == dumped.lengths  # frames from utt2dur == frames of the dump
    plan = [(b, len(b)) for b in bucket_batches(dumped.lengths, 300, 3, seed=1, epoch=1)]
    ref = list(iter_batches(dumped, plan, num_workers=0, epoch=1))
    got = list(iter_batches(otf, plan, num_workers=workers, prefetch_factor=2, epoch=1))
    assert len(got) == len(ref) == len(plan)
    for (a, _), (b, _) in zip(ref, got):
        assert a["utts"] == b["utts"] and torch.equal(a["feat_lens"], b["feat_lens"])
        assert torch.equal(a["targets"], b["targets"])
        assert float((a["feats"] - b["feats"]).abs().max()) < 1e-5


def _snr_db(clean, noisy):
    clean = np.asarray(clean, np.float64)
    return 10 * np.log10(np.mean(clean**2) / np.mean((np.asarray(noisy, np.float64) - clean) ** 2))


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
def test_noise_is_added_at_the_drawn_snr(data, kind):
    from asr.data.datadir import DataDir
    from asr.features import WaveAugment

    dd = DataDir.load(data)
    waves = [dd.audio(u) for u in dd.utt_ids]
    aug = WaveAugment(noise_prob=1.0, snr_range=(5.0, 20.0), noise_types=(kind,), seed=7)
    out = aug.batch(waves, dd.utt_ids, epoch=3)
    snrs = []
    for utt, x, y in zip(dd.utt_ids, waves, out):
        p = aug.draw(3, utt)
        assert p["noise"] == kind and 5.0 <= p["snr"] <= 20.0
        assert y.shape == x.shape and y.dtype == np.float32
        assert abs(_snr_db(x, y) - p["snr"]) < 0.02, (utt, _snr_db(x, y), p["snr"])
        snrs.append(p["snr"])
    assert np.ptp(snrs) > 1.0  # a range, not one value
    fixed = WaveAugment(noise_prob=1.0, snr_range=(10.0, 10.0), noise_types=(kind,))
    for x, y in zip(waves, fixed.batch(waves, dd.utt_ids, epoch=1)):
        assert abs(_snr_db(x, y) - 10.0) < 0.02


def test_babble_comes_from_the_other_utterances_of_the_batch(data):
    from asr.data.datadir import DataDir
    from asr.features import WaveAugment

    dd = DataDir.load(data)
    waves = [dd.audio(u) for u in dd.utt_ids[:2]]
    aug = WaveAugment(noise_prob=1.0, snr_range=(0.0, 0.0), noise_types=("babble",), babble_utts=1)
    noise = aug.batch(waves, dd.utt_ids[:2], epoch=1)[0] - waves[0]
    # the noise of utterance 0 is utterance 1, looped and scaled: its spectrum peaks at 1's harmonics
    other = waves[1]
    spec_n = np.abs(np.fft.rfft(noise[:4000]))
    spec_o = np.abs(np.fft.rfft(other[:4000]))
    spec_x = np.abs(np.fft.rfft(waves[0][:4000]))
    assert np.corrcoef(spec_n, spec_o)[0, 1] > 0.8 > np.corrcoef(spec_n, spec_x)[0, 1]
    alone = aug.batch(waves[:1], dd.utt_ids[:1], epoch=1)[0]  # nobody else in the batch: pink noise
    assert abs(_snr_db(waves[0], alone)) < 0.02


def test_reverb_keeps_length_and_level_and_changes_the_audio(data):
    from asr.data.datadir import DataDir
    from asr.features import WaveAugment

    dd = DataDir.load(data)
    x = dd.audio(dd.utt_ids[0])
    aug = WaveAugment(reverb_prob=1.0, rt60_range=(0.5, 0.7))
    p = aug.draw(1, dd.utt_ids[0])
    assert 0.5 <= p["rt60"] <= 0.7 and "noise" not in p
    y = aug.apply(x, p)
    assert y.shape == x.shape
    assert np.sqrt(np.mean(y.astype(np.float64) ** 2)) == pytest.approx(np.sqrt(np.mean(x.astype(np.float64) ** 2)),
                                                                         rel=1e-4)
    assert _snr_db(x, y) < 15  # the reverberant tail is not a small change


def test_draws_are_seeded_by_seed_epoch_and_utterance(data):
    """What resume relies on: a fresh WaveAugment (as after a restart) gives the same audio for the same
    (seed, epoch, utt), wherever the utterance sits in its batch; another epoch or seed another draw."""
    from asr.data.datadir import DataDir
    from asr.features import WaveAugment

    dd = DataDir.load(data)
    utts = dd.utt_ids
    waves = [dd.audio(u) for u in utts]
    kw = dict(noise_prob=1.0, reverb_prob=1.0, noise_types=("white", "pink"), seed=5)
    a = WaveAugment(**kw).batch(waves, utts, epoch=4)
    b = WaveAugment(**kw).batch(waves[::-1], utts[::-1], epoch=4)[::-1]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = WaveAugment(**kw).batch(waves, utts, epoch=5)
    d = WaveAugment(**{**kw, "seed": 6}).batch(waves, utts, epoch=4)
    assert all(not np.array_equal(x, y) for x, y in zip(a, c))
    assert all(not np.array_equal(x, y) for x, y in zip(a, d))


def test_augmented_training_batches_same_in_workers_and_dev_batches_clean(data, tmp_path):
    import shutil

    from asr.data.dataset import AudioDataset, FeatureDataset, iter_batches
    from asr.features import FeatureConfig, WaveAugment
    from asr.text import CharTokenizer

    d = tmp_path / "data"
    shutil.copytree(data, d)
    cfg = FeatureConfig(n_mels=40)
    cmvn = _dumped(d, tmp_path, cfg)
    aug = WaveAugment(noise_prob=1.0, reverb_prob=0.5, snr_range=(0.0, 5.0))
    ds = AudioDataset(d, CharTokenizer(), cfg, cmvn, augment=aug)
    plan = [([0, 1, 2], 3), ([3, 4, 5], 3)]
    in_proc = list(iter_batches(ds, plan, num_workers=0, epoch=2))
    workers = list(iter_batches(ds, plan, num_workers=2, prefetch_factor=1, epoch=2))
    clean = FeatureDataset(d, CharTokenizer(), cmvn)
    for (a, _), (b, _), (idx, _) in zip(in_proc, workers, plan):
        assert torch.equal(a["feats"], b["feats"])
        ref = clean.collate(idx)["feats"]
        assert float((a["feats"] - ref).abs().mean()) > 0.1  # noise at <= 5 dB SNR changes the features
        assert float((ds.collate(idx)["feats"] - ref).abs().max()) < 1e-5  # epoch None (dev): no augmentation


def test_train_config_checks_the_augmentation_options():
    from asr.train import TrainConfig

    TrainConfig(on_the_fly=True, noise_prob=0.5, reverb_prob=0.3)
    with pytest.raises(ConfigError, match="need on_the_fly"):
        TrainConfig(noise_prob=0.5)
    with pytest.raises(ConfigError, match="snr_range"):
        TrainConfig(on_the_fly=True, snr_range=(20.0, 5.0))
    with pytest.raises(ConfigError, match="noise_types"):
        TrainConfig(on_the_fly=True, noise_types=("brown",))
    with pytest.raises(ConfigError, match="reverb_prob"):
        TrainConfig(on_the_fly=True, reverb_prob=1.5)


def test_asr_train_on_the_fly_with_noise_and_reverb(data, tmp_path):
    """`asr train --train.on_the_fly true` with noise + reverb: runs from audio with the dump's feature
    config, saves features.yaml, and refuses noise on dumped features with a message."""
    import json
    import shutil

    from asr.cli import main
    from asr.features import FeatureConfig

    d = tmp_path / "data"
    shutil.copytree(data, d)
    _dumped(d, tmp_path, FeatureConfig(n_mels=40))
    (d / "feats.scp").unlink()  # on the fly needs no dump: only feats.yaml for the config
    assert main(["make-tokens", "--train-data", str(d), "--out", str(tmp_path / "lang")]) == 0
    tokens = tmp_path / "lang" / "tokens.txt"
    common = ["train", "--train-data", str(d), "--dev-data", str(d), "--tokens", str(tokens),
              "--cmvn", str(tmp_path / "cmvn.npz"), "--model-conf", "conf/model/small.yaml",
              "--train-conf", "conf/train/cpu.yaml", "--device", "cpu"]
    small = ["--model.hidden", "16", "--model.layers", "1", "--model.conv_channels", "4", "--train.epochs", "1",
             "--train.threads", "1", "--train.max_frames", "400", "--train.average", "0"]
    exp = tmp_path / "exp"
    rc = main([*common, "--exp", str(exp), "--", *small, "--train.on_the_fly", "true", "--train.noise_prob", "1",
               "--train.reverb_prob", "1", "--train.num_workers", "1"])
    assert rc == 0
    row = json.loads((exp / "metrics.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(row["train_loss"]) and row["audio_sec_per_sec"] > 0
    assert (exp / "features.yaml").read_text() == (d / "feats.yaml").read_text()
    assert main([*common, "--exp", str(tmp_path / "exp2"), "--", *small, "--train.noise_prob", "1"]) != 0


def test_extract_features_stats_only(data, tmp_path):
    """`asr extract-features --stats-only`: the dump's CMVN stats and frame counts, no .npy, no feats.scp."""
    import shutil

    from asr.cli import main
    from asr.features import CMVN

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(data, a)
    shutil.copytree(data, b)
    assert main(["extract-features", "--data", str(a), "--dump", str(tmp_path / "dump"), "--cmvn-out",
                 str(tmp_path / "a.npz"), "--no-progress", "--feat.n_mels", "40"]) == 0
    assert main(["extract-features", "--data", str(b), "--stats-only", "--cmvn-out", str(tmp_path / "b.npz"),
                 "--no-progress", "--feat.n_mels", "40"]) == 0
    ca, cb = CMVN.load(tmp_path / "a.npz"), CMVN.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(ca.mean, cb.mean)
    np.testing.assert_array_equal(ca.std, cb.std)
    assert (b / "utt2num_frames").read_text() == (a / "utt2num_frames").read_text()
    assert (b / "feats.yaml").read_text() == (a / "feats.yaml").read_text() and not (b / "feats.scp").exists()
    assert main(["extract-features", "--data", str(b), "--stats-only", "--no-progress"]) != 0  # no --cmvn-out
    assert main(["extract-features", "--data", str(b), "--no-progress"]) != 0  # neither --dump nor --stats-only


def test_resume_reproduces_the_augmentation_draws(data, tmp_path):
    """Noise + reverb on the fly: a run killed after epoch 1 (last.pt written) and resumed ends with the
    same epoch-2 loss and weights as an uninterrupted run (the draws depend on seed, epoch, utterance)."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from asr.cli import main
    from asr.features import FeatureConfig
    from asr.train import KILLED_EXIT_CODE

    d = tmp_path / "data"
    shutil.copytree(data, d)
    _dumped(d, tmp_path, FeatureConfig(n_mels=40))
    assert main(["make-tokens", "--train-data", str(d), "--out", str(tmp_path / "lang")]) == 0
    root = Path(__file__).resolve().parents[1]

    def train(exp, kill=None):
        env = {**os.environ, "PYTHONPATH": str(root)}
        env.pop("ASR_TEST_KILL_AT", None)
        if kill:
            env["ASR_TEST_KILL_AT"] = kill
        cmd = [sys.executable, "-m", "asr.cli", "train", "--train-data", str(d), "--dev-data", str(d),
               "--tokens", str(tmp_path / "lang" / "tokens.txt"), "--cmvn", str(tmp_path / "cmvn.npz"),
               "--exp", str(exp), "--model-conf", str(root / "conf/model/small.yaml"),
               "--train-conf", str(root / "conf/train/cpu.yaml"), "--device", "cpu", "--",
               "--model.hidden", "16", "--model.layers", "1", "--model.conv_channels", "4", "--train.epochs", "2",
               "--train.threads", "1", "--train.max_frames", "300", "--train.average", "0", "--train.sortagrad", "0",
               "--train.on_the_fly", "true", "--train.noise_prob", "0.7", "--train.reverb_prob", "0.5"]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=root)

    r = train(tmp_path / "ref")
    assert r.returncode == 0, r.stderr[-3000:]
    r = train(tmp_path / "res", kill="last_pt:1")
    assert r.returncode == KILLED_EXIT_CODE, r.stderr[-3000:]
    r = train(tmp_path / "res")
    assert r.returncode == 0 and "resumed from" in r.stdout + r.stderr, r.stderr[-3000:]

    def history(exp):
        return [json.loads(x) for x in (exp / "metrics.jsonl").read_text().splitlines()]

    ref, res = history(tmp_path / "ref"), history(tmp_path / "res")
    assert [h["epoch"] for h in res] == [1, 2]
    np.testing.assert_allclose([h["train_loss"] for h in res], [h["train_loss"] for h in ref], rtol=1e-5)
    a = torch.load(tmp_path / "ref" / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "res" / "checkpoints" / "last.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
