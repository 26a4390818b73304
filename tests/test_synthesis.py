"""Synthetic corpus generator (asr/synthesis): text cleaning, voices/splits, augmentation, generation."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.errors import ConfigError
from asr.synthesis import augment as aug
from asr.synthesis.generate import CorpusConfig, generate
from asr.synthesis.text_sources import clean_sentence, fortune_paragraphs, load_sentences, make_sentence
from asr.synthesis.voices import ENGINES, all_voices, engine_available

HAVE_FAST_ENGINES = shutil.which("espeak-ng") is not None and shutil.which("flite") is not None
needs_engines = pytest.mark.skipif(not HAVE_FAST_ENGINES, reason="espeak-ng/flite not installed (make deps)")

SENTENCES = [
    "The cat sat quietly on the warm mat.", "A small boat drifted slowly down the river.",
    "She opened the window to let the fresh air in.", "We walked along the beach until the sun went down.",
    "His old car finally broke down on the highway.", "Please put the books back on the shelf.",
    "The children laughed at the clown in the park.", "My brother plays the guitar every evening.",
    "Rain fell softly on the roof all night long.", "They built a house near the edge of the forest.",
    "Never trust a man who tells you he is honest.", "Every cloud has a silver lining, they say.",
    "The train was late again this morning.", "I would like a cup of tea with milk.",
    "Good friends are hard to find and harder to keep.", "The dog barked loudly at the passing truck.",
    "Our teacher told us a story about the sea.", "A bright red kite flew high above the hill.",
    "He forgot his keys on the kitchen table.", "The market is busy on Saturday mornings.",
    "She painted the fence a pale shade of green.", "Time flies when you are having fun.",
    "The mountain road was narrow and steep.", "Nobody knows where the old man went.",
    "Fresh bread smells wonderful in the early morning.", "The phone rang twice and then stopped.",
    "Birds were singing in the tall oak trees.", "He wrote a long letter to his mother.",
    "The river flooded the fields after the storm.", "Let us meet again next week at noon.",
    "A quiet mind is a happy mind.", "The lamp on the desk flickered and went out.",
    "We planted tomatoes and beans in the garden.", "Her voice was calm and very clear.",
    "The museum opens its doors at nine.", "Snow covered the village like a white blanket.",
    "He could not remember the name of the song.", "The baker sold every loaf before lunch.",
    "Strong winds blew the leaves across the yard.", "I think the answer is hidden in the question.",
]


@pytest.fixture(scope="module")
def fortunes_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fortunes")
    entries = []
    for i in range(0, len(SENTENCES), 2):
        entries.append(f"{SENTENCES[i]}  {SENTENCES[i + 1]}\n\t\t-- Somebody Famous, {1900 + i}")
    (d / "fake").write_text("\n%\n".join(entries) + "\n%\n", encoding="utf-8")
    (d / "fake.dat").write_bytes(b"\x00\x01binary")
    return d


def tiny_config(tmp: Path, fortunes_dir: Path, **kw) -> CorpusConfig:
    cfg = CorpusConfig(out_dir=str(tmp / "data"), wav_dir=str(tmp / "wav"), text_cache=None,
                       hours=0.006, dev_hours=0.003, test_hours=0.003, seed=3, nj=2,
                       engines=("espeak", "flite"), sources=("fortunes",), fortunes_dir=str(fortunes_dir),
                       babble_tracks=1)
    return replace(cfg, **kw)


# ------------------------------------------------------------------------------------------- text
@pytest.mark.parametrize("raw,ok", [
    ("The cat sat on the mat.", True),
    ("He paid 5 dollars for it.", False),          # digits
    ("The NASA launch was delayed.", False),       # acronym
    ("Mr Smith went to town today.", False),       # title the engine expands
    ("Use x to denote the unknown value here.", False),  # stray single letter
    ("what a lovely day it is", False),            # not a sentence
    ("Is this the end of the road?", True),
    ("She said \"hello there\" and left the room.", True),
    ("Send it to me & I will sign it.", False),    # odd character
])
def test_clean_sentence(raw, ok):
    assert (clean_sentence(raw) is not None) == ok


def test_make_sentence_normalises_and_limits_length():
    s = make_sentence("Don't stop believing, my well-known friend!", "t")
    assert s is not None and s.text == "don't stop believing my well known friend"
    assert re.fullmatch(r"[a-z' ]+", s.text)
    assert make_sentence("Too short here.", "t") is None
    assert make_sentence("This sentence " + "goes on and " * 10 + "never ends.", "t") is None


def test_fortunes_parsing_drops_attribution(fortunes_dir):
    paras = list(fortune_paragraphs(fortunes_dir))
    assert len(paras) == len(SENTENCES) // 2
    assert all("Famous" not in p for p, _ in paras)
    sents = load_sentences(("fortunes",), fortunes_dir=fortunes_dir)
    assert len(sents) == len(SENTENCES)
    assert len({s.text for s in sents}) == len(sents)


# ----------------------------------------------------------------------------------------- voices
def test_voice_split_is_disjoint_and_covers_engines():
    voices = all_voices()
    ids = [v.id for v in voices]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9_]+", i) for i in ids)
    for e in ENGINES:
        assert any(v.engine == e and v.split == "train" for v in voices), e
    assert any(v.split == "dev" for v in voices) and any(v.split == "test" for v in voices)
    # an espeak variant (timbre) heard in dev/test is never heard in train, in any dialect
    variant = {s: {v.name.split("+")[1] for v in voices if v.engine == "espeak" and v.split == s}
               for s in ("train", "dev", "test")}
    assert not variant["train"] & variant["dev"] and not variant["train"] & variant["test"]
    assert not variant["dev"] & variant["test"]


@needs_engines
def test_every_espeak_catalogue_voice_is_installed_and_unknown_ones_are_flagged():
    from asr.synthesis.voices import Voice, missing_voices

    assert missing_voices(all_voices()) == []  # espeak-ng would silently fall back to its default voice
    fake = [Voice("espeak_en_us_nosuch", "espeak", "en-us+nosuchvariant", "train"),
            Voice("espeak_xx_m1", "espeak", "en-xx+m1", "train")]
    assert missing_voices(fake) == fake


# --------------------------------------------------------------------------------------- augment
def test_augment_is_deterministic_and_bounded():
    rng = np.random.default_rng(0)
    x = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    cfg = aug.AugmentConfig(p_speed=0, p_bandlimit=1, p_reverb=1, p_noise=1)
    p = aug.sample_augment(rng, cfg)
    y1 = aug.apply_augment(x, 16000, p, [np.random.default_rng(1).standard_normal(8000).astype(np.float32)])
    y2 = aug.apply_augment(x, 16000, p, [np.random.default_rng(1).standard_normal(8000).astype(np.float32)])
    assert np.array_equal(y1, y2)
    assert np.abs(y1).max() <= 1.0 and np.isfinite(y1).all()
    pad = int(p["pad"][0] * 16000) + int(p["pad"][1] * 16000)
    assert y1.size == x.size + int(0.1 * 16000) + pad  # reverb tail + padding
    assert abs(20 * np.log10(np.abs(y1).max()) - p["peak_db"]) < 0.01


def test_corpus_resampler_is_scipy_polyphase_at_the_rational_rate():
    """Engine rate x speed factor -> 16 kHz in one polyphase step (scipy), as the corpus's audio has it."""
    from fractions import Fraction

    from scipy import signal

    x = _voiced(0.5, 22050).astype(np.float32)
    y = aug.resample(x, Fraction(22050) * Fraction("0.93"), 16000)  # 16000 / 20506.5 = 32000 / 41013
    ratio = Fraction(32000, 41013).limit_denominator(2000)
    assert y.dtype == np.float32 and y.size == -(-x.size * ratio.numerator // ratio.denominator)
    assert np.array_equal(y, signal.resample_poly(x.astype(np.float64), ratio.numerator, ratio.denominator)
                          .astype(np.float32))
    assert abs(y.size / 16000 - x.size / 22050 / 0.93) < 1e-3  # 0.93x speed: 1/0.93 as long
    assert np.array_equal(aug.resample(x, 16000, 16000), x)


def test_noise_snr():
    x = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1
    for kind in ("white", "pink"):
        p = {"seed": 1, "noise": kind, "snr": 10.0, "pad": [0, 0], "peak_db": -1.0}
        y = aug.apply_augment(x, 16000, p).astype(np.float64)
        # the gain is unknown here: recover the speech part by projection, the rest is noise
        scale = float(np.dot(y, x) / np.dot(x, x))
        noise = y - scale * x
        snr = 10 * np.log10(np.mean((scale * x) ** 2) / np.mean(noise**2))
        assert abs(snr - 10.0) < 0.7, (kind, snr)


# ------------------------------------------------------------------------------------ generation
@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory, fortunes_dir):
    if not HAVE_FAST_ENGINES:
        pytest.skip("espeak-ng/flite not installed (make deps)")
    tmp = tmp_path_factory.mktemp("corpus")
    cfg = tiny_config(tmp, fortunes_dir)
    st = generate(cfg, progress=False)
    return cfg, st


def _read_map(p: Path) -> dict[str, str]:
    out = {}
    for line in p.read_text().splitlines():
        k, _, v = line.partition(" ")
        out[k] = v
    return out


@needs_engines
def test_generate_writes_valid_datadirs(tiny_corpus):
    cfg, st = tiny_corpus
    data = Path(cfg.out_dir)
    for split in ("train", "dev", "test"):
        d = data / split
        wav, text, u2s = (_read_map(d / f) for f in ("wav.scp", "text", "utt2spk"))
        assert wav and wav.keys() == text.keys() == u2s.keys()
        assert list(wav) == sorted(wav)
        u2d, s2u = _read_map(d / "utt2dur"), _read_map(d / "spk2utt")
        assert u2d.keys() == wav.keys()
        assert {u: s for s, us in s2u.items() for u in us.split()} == u2s and list(s2u) == sorted(s2u)
        for utt, path in wav.items():
            assert u2s[utt] == utt.rsplit("-", 1)[0], "speaker id prefixes the utterance id"
            assert re.fullmatch(r"[a-z' ]+", text[utt])
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert info.duration > 0.3
            assert u2d[utt] == f"{info.frames / 16000:.3f}"
        assert st["splits"][split]["utterances"] == len(wav)
    assert st["generation"]["failed_utterances"] == 0
    assert (data / "corpus_stats.md").read_text().startswith("# Synthetic corpus")
    assert json.loads((data / "corpus_stats.json").read_text())["splits"]["train"]["hours"] > 0


@needs_engines
def test_splits_disjoint_by_voice_and_sentence_and_lm_text_excludes_held_out(tiny_corpus):
    cfg, st = tiny_corpus
    data = Path(cfg.out_dir)
    spk = {s: set(_read_map(data / s / "utt2spk").values()) for s in ("train", "dev", "test")}
    txt = {s: set(_read_map(data / s / "text").values()) for s in ("train", "dev", "test")}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not spk[a] & spk[b], (a, b)
        assert not txt[a] & txt[b], (a, b)
        assert st["disjoint"][f"{a}-{b}"] == {"voices": True, "sentences": True}
    lm = set((data / "lm_text" / "train.txt").read_text().splitlines()) | set(
        (data / "lm_text" / "dev.txt").read_text().splitlines())
    assert not lm & (txt["dev"] | txt["test"])
    assert txt["train"] <= lm
    assert {e for e in st["splits"]["train"]["engines"]} == {"espeak", "flite"}


def _digest_tree(data: Path) -> dict[str, str]:
    out = {}
    for split in ("train", "dev", "test"):
        for utt, path in _read_map(data / split / "wav.scp").items():
            out[utt] = hashlib.sha1(Path(path).read_bytes()).hexdigest()
        out[split + "/text"] = hashlib.sha1((data / split / "text").read_bytes()).hexdigest()
    return out


@needs_engines
def test_generation_is_deterministic_and_resumable(tiny_corpus, tmp_path, fortunes_dir):
    cfg, _ = tiny_corpus
    first = _digest_tree(Path(cfg.out_dir))
    # the same seed elsewhere gives byte-identical audio and transcripts
    other = tiny_config(tmp_path, fortunes_dir)
    generate(other, progress=False)
    assert _digest_tree(Path(other.out_dir)) == first
    # a rerun skips every existing wav and leaves it untouched
    wavs = sorted(Path(other.wav_dir).rglob("*.wav"))
    mtimes = [p.stat().st_mtime_ns for p in wavs]
    st = generate(other, progress=False)
    assert st["generation"]["generated_utterances"] == 0
    assert len(st["generation_history"]) == 2  # the run that made the audio is still on record
    assert st["generation"]["skipped_utterances"] == sum(len(_read_map(Path(other.out_dir) / s / "wav.scp"))
                                                         for s in ("train", "dev", "test"))
    assert [p.stat().st_mtime_ns for p in wavs] == mtimes
    # a killed run's leftovers (a missing wav, a partial temporary file) are regenerated / removed
    victim = wavs[0]
    victim.unlink()
    partial = victim.parent / f".{victim.name}.tmp-123-abc"
    partial.write_bytes(b"RIFF")
    st = generate(other, progress=False)
    assert st["generation"]["generated_utterances"] == 1 and victim.is_file()
    assert not partial.exists()


@needs_engines
def test_other_seed_gives_other_corpus(tiny_corpus, tmp_path, fortunes_dir):
    cfg, _ = tiny_corpus
    other = tiny_config(tmp_path, fortunes_dir, seed=4)
    generate(other, progress=False)
    a = _read_map(Path(cfg.out_dir) / "train" / "text")
    b = _read_map(Path(other.out_dir) / "train" / "text")
    assert a != b


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["festival", "piper"])
def test_slow_engines_synthesise(engine, tmp_path):
    from asr.synthesis.synth import synthesize_batch

    ok, why = engine_available(engine)
    if not ok:
        pytest.skip(why)
    for v in [v for v in all_voices() if v.engine == engine][:2]:
        params = {"seed": 7} if engine == "piper" else {}
        [(x, sr), (y, _)] = synthesize_batch(v, [("The weather is fine today.", params)] * 2, tmp_path)
        assert sr >= 16000 and x.dtype == np.float32 and 0.5 < x.size / sr < 5 and np.abs(x).max() > 0.01
        assert np.array_equal(x, y), "same text and settings must give the same audio"


@needs_engines
def test_unavailable_engine_is_skipped_with_a_note(tmp_path, fortunes_dir, monkeypatch, capsys):
    import asr.synthesis.generate as gen

    real = gen.engine_available
    monkeypatch.setattr(gen, "engine_available",
                        lambda e: (False, "piper-tts not installed") if e == "piper" else real(e))
    st = generate(tiny_config(tmp_path, fortunes_dir, engines=("espeak", "flite", "piper")), progress=False)
    assert st["engines_used"] == ["espeak", "flite"]
    assert st["engines_skipped"] == {"piper": "piper-tts not installed"}
    assert "engine piper skipped: piper-tts not installed" in capsys.readouterr().err
    assert "piper" not in st["splits"]["train"]["engines"]
    assert "skipped: piper" in (tmp_path / "data" / "corpus_stats.md").read_text()


def test_drop_train_augment_changes_only_the_train_augmentation(tmp_path, fortunes_dir):
    from asr.synthesis.generate import CorpusError, _drop_kinds, make_plan

    sentences = load_sentences(("fortunes",), fortunes_dir=fortunes_dir)
    cfg = tiny_config(tmp_path, fortunes_dir, hours=0.03)
    base = make_plan(sentences, cfg, ("espeak", "flite"), tmp_path / "wav")
    abl = make_plan(sentences, replace(cfg, drop_train_augment=("noise", "speed")), ("espeak", "flite"),
                    tmp_path / "wav")
    for split in ("dev", "test"):  # held-out audio is the same, file names included
        assert [(s.utt, s.augment, s.wav) for s in abl[split]] == [(s.utt, s.augment, s.wav) for s in base[split]]
    assert [s.utt for s in abl["train"]] == [s.utt for s in base["train"]]
    assert any("noise" in s.augment for s in base["train"]) and any(s.augment["speed"] != 1.0 for s in base["train"])
    for a, b in zip(abl["train"], base["train"]):
        assert "noise" not in a.augment and "snr" not in a.augment and a.augment["speed"] == 1.0
        # everything else (reverb, band-limit, gain, padding, seed) is drawn exactly as before
        kept = {k: v for k, v in b.augment.items() if k not in ("noise", "snr", "babble_bank", "speed")}
        assert {k: v for k, v in a.augment.items() if k != "speed"} == kept
        assert (a.wav == b.wav) == (a.augment == b.augment)
    with pytest.raises(CorpusError, match="echo"):
        _drop_kinds("noise,echo")
    with pytest.raises(CorpusError, match="echo"):
        make_plan(sentences, replace(cfg, drop_train_augment=("echo",)), ("espeak", "flite"), tmp_path / "wav")


def _voiced(seconds: float, sr: int = 16000) -> np.ndarray:
    """A vowel-like harmonic signal with energy up to ~7 kHz."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 130 + 20 * np.sin(2 * np.pi * 2 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    return 0.5 * sum(np.sin(k * phase) / k for k in range(1, 50)) / 3


def _band_db(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return 10 * np.log10(spec[(f >= lo) & (f < hi)].sum() + 1e-20)


@pytest.mark.parametrize("codec", aug.CODECS)
def test_codec_round_trip_is_lossy_but_keeps_the_speech(codec):
    sr = 16000
    x = _voiced(1.0)
    y = aug.apply_codec(x, sr, codec, 0.9)
    assert y.shape == x.shape and np.isfinite(y).all()
    assert not np.allclose(y, x, atol=1e-3)  # lossy
    # the speech band survives: the spectra below 3.4 kHz agree within a few dB
    assert abs(_band_db(y, sr, 100, 3400) - _band_db(x, sr, 100, 3400)) < 3.0
    lag = int(np.argmax(np.correlate(y[2000:4000], x[2000:4000], "full"))) - 1999
    assert abs(lag) < 400, lag  # no gross delay
    if aug.CODEC_SPECS[codec][0] == 8000:  # telephone codecs: nothing above 4 kHz
        assert _band_db(y, sr, 4600, 8000) < _band_db(x, sr, 4600, 8000) - 20
    for level in aug.AugmentConfig().codec_level_range:  # both ends of the drawn range encode
        assert aug.apply_codec(x[:4000], sr, codec, level).shape == (4000,)
    with pytest.raises(ConfigError, match="unknown codec"):
        aug.apply_codec(x, sr, "amr")


def test_mu_law_codec_matches_torchaudio_quantisation():
    """G.711 mu-law (libsndfile) against torchaudio's 8-bit mu-law companding: same error size."""
    import torch
    import torchaudio.functional as AF
    from scipy import signal

    x = _voiced(0.5, 8000)
    y = aug.apply_codec(x, 8000, "ulaw")  # at 8 kHz: no resampling, only the companding
    ref = AF.mu_law_decoding(AF.mu_law_encoding(torch.tensor(x), 256), 256).numpy()
    err, err_ref = np.sqrt(np.mean((y - x) ** 2)), np.sqrt(np.mean((ref - x) ** 2))
    assert 0.3 < err / err_ref < 3.0, (err, err_ref)
    assert signal.correlate(y, x, "valid")[0] > 0.99 * np.dot(x, x)


def test_train_codec_prob_touches_only_the_train_split(tmp_path, fortunes_dir):
    from asr.synthesis.generate import CorpusError, make_plan

    sentences = load_sentences(("fortunes",), fortunes_dir=fortunes_dir)
    cfg = tiny_config(tmp_path, fortunes_dir, hours=0.05)
    base = make_plan(sentences, cfg, ("espeak", "flite"), tmp_path / "wav")
    cod = make_plan(sentences, replace(cfg, train_codec_prob=0.3), ("espeak", "flite"), tmp_path / "wav")
    for split in ("dev", "test"):
        assert [(s.utt, s.augment, s.wav) for s in cod[split]] == [(s.utt, s.augment, s.wav) for s in base[split]]
    n = len(cod["train"])
    with_codec = [s for s in cod["train"] if "codec" in s.augment]
    assert 0.1 * n < len(with_codec) < 0.55 * n, (len(with_codec), n)
    assert {s.augment["codec"] for s in with_codec} <= set(aug.CODECS)
    for a, b in zip(cod["train"], base["train"]):  # every other draw is unchanged
        assert aug.without(a.augment, ["codec"]) == b.augment
        assert (a.wav == b.wav) == ("codec" not in a.augment)
    dropped = make_plan(sentences, replace(cfg, train_codec_prob=0.3, drop_train_augment=("codec",)),
                        ("espeak", "flite"), tmp_path / "wav")
    assert [s.wav for s in dropped["train"]] == [s.wav for s in base["train"]]
    with pytest.raises(CorpusError, match="train_codec_prob"):
        make_plan(sentences, replace(cfg, train_codec_prob=1.5), ("espeak", "flite"), tmp_path / "wav")


def _dbfs(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


@pytest.mark.parametrize("kind", aug.PAD_NOISE_TYPES)
def test_pad_noise_fills_the_padding_at_its_level_and_leaves_the_rest(kind):
    x = _voiced(0.5).astype(np.float32)
    p = {"seed": 5, "cutoff": 4000.0, "rt60": 0.3, "drr": 3.0, "pad": [0.2, 0.3], "peak_db": -6.0}
    off = aug.apply_augment(x, 16000, p)
    on = aug.apply_augment(x, 16000, {**p, "pad_noise": kind, "pad_noise_db": -55.0})
    lead, trail = 3200, 4800
    assert on.shape == off.shape
    assert not off[:lead].any() and not off[-trail:].any()  # without it: exact zeros
    assert np.array_equal(on[lead:-trail], off[lead:-trail])  # the utterance itself is untouched
    pads = np.concatenate([on[:lead], on[-trail:]])
    assert abs(_dbfs(pads) - (-55.0)) < 0.01
    assert abs(_dbfs(on[:lead]) - (-55.0)) < 1.5 and abs(_dbfs(on[-trail:]) - (-55.0)) < 1.5
    q = np.round(pads * 32767)  # as 16-bit PCM: no run of digital silence
    assert np.mean(q == 0) < 0.02
    spec = np.abs(np.fft.rfft(pads)) ** 2
    f = np.fft.rfftfreq(pads.size, 1 / 16000)
    low_high_db = 10 * np.log10(spec[(f > 50) & (f < 500)].mean() / spec[(f > 4000) & (f < 7500)].mean())
    assert (low_high_db > 8) if kind == "pink" else (abs(low_high_db) < 2), low_high_db
    assert np.array_equal(on, aug.apply_augment(x, 16000, {**p, "pad_noise": kind, "pad_noise_db": -55.0}))


def test_pad_noise_db_changes_only_the_padding_draws(tmp_path, fortunes_dir):
    from asr.synthesis.generate import CorpusError, make_plan

    sentences = load_sentences(("fortunes",), fortunes_dir=fortunes_dir)
    cfg = tiny_config(tmp_path, fortunes_dir, hours=0.03)
    base = make_plan(sentences, cfg, ("espeak", "flite"), tmp_path / "wav")
    padded = make_plan(sentences, replace(cfg, pad_noise_db=-55.0), ("espeak", "flite"), tmp_path / "wav")
    assert not any("pad_noise" in s.augment or "pad_noise_db" in s.augment for sp in base.values() for s in sp)
    kinds = set()
    for split in ("train", "dev", "test"):  # every split, every utterance; every other draw unchanged
        for a, b in zip(padded[split], base[split]):
            assert a.utt == b.utt and a.wav != b.wav
            assert {k: v for k, v in a.augment.items() if k not in ("pad_noise", "pad_noise_db")} == b.augment
            assert a.augment["pad_noise_db"] == -55.0
            kinds.add(a.augment["pad_noise"])
    assert kinds == set(aug.PAD_NOISE_TYPES)
    for bad in (0.0, 6.0, -200.0):
        with pytest.raises(CorpusError, match="pad_noise_db: an RMS level in dBFS"):
            make_plan(sentences, replace(cfg, pad_noise_db=bad), ("espeak", "flite"), tmp_path / "wav")


@needs_engines
def test_generated_padding_has_the_noise_level_on_disk(tmp_path, fortunes_dir):
    cfg = tiny_config(tmp_path, fortunes_dir, pad_noise_db=-50.0)
    st = generate(cfg, progress=False)
    assert st["config"]["pad_noise_db"] == -50.0
    assert "white/pink noise at -50 dBFS RMS" in (tmp_path / "data" / "corpus_stats.md").read_text()
    checked = 0
    for split in ("train", "dev", "test"):
        for line in (tmp_path / "data" / "local" / "corpus" / f"{split}.jsonl").read_text().splitlines():
            u = json.loads(line)
            x, sr = sf.read(u["wav"], dtype="float32")
            lead, trail = (int(s * sr) for s in u["augment"]["pad"])
            pads = np.concatenate([x[:lead], x[x.size - trail:]])
            if "noise" in u["augment"]:  # additive noise at an SNR was there before: louder than the floor
                assert _dbfs(pads) > -50.5
                continue
            assert abs(_dbfs(pads) - (-50.0)) < 0.2, (u["utt"], _dbfs(pads))
            assert np.mean(x[:lead] == 0) < 0.02 and np.mean(x[x.size - trail:] == 0) < 0.02
            checked += 1
    assert checked >= 3
