"""Hotwords, lexicons and the N-best size where users are: the file syntax and its errors, decode.yaml
and runtime.json, the recognizer (both backends), the API and the commands (issue 18, part 4).

The tiny seconds-trained model misspells word pairs it never heard in training ("yes go" comes out
"yesgo", "no go" "nono" in every espeak voice tried) and slow or fast speech; a hotword must put
them right, and a lexicon must keep every output word inside it."""
from __future__ import annotations

import json

import jiwer
import pytest

from asr.cli import main
from asr.decode.config import DecodeConfig
from asr.decode.hotwords import (Hotword, hotword_entries, lexicon_entries, parse_hotword, read_hotwords,
                                 read_lexicon)
from asr.errors import ConfigError
from asr.text import CharTokenizer

TOK = CharTokenizer()

# (phrase, voice, words per minute): phrases the tiny model gets wrong but "no" (measured 2 Dec 2026:
# "yesgo", "nono", "goestop", "p now", "stop ow", "no"). None of the pairs occurs in its
# training sentences (yes / no / go up / stop now); the first three came out wrong in all 8 voice x
# speed settings tried, so the bounds below do not hang on one machine's rounding, as "go now" did
# (right on one machine, "go no" on another)
HARD = [("yes go", "en-us", 160), ("no go", "en-us", 200), ("go stop", "en-us", 250), ("up now", "en-us", 200),
        ("stop now", "en-us+m3", 120), ("no", "en-gb", 260)]
LEXICON = ["yes", "no", "go", "up", "stop", "now"]


# ---- the entry syntax and the files
@pytest.mark.parametrize("entry, want", [
    ("Kubernetes", Hotword("kubernetes", None)),
    ("Kubernetes 3.0", Hotword("kubernetes", 3.0)),
    ("  stop   Now  2 ", Hotword("stop now", 2.0)),
    ("stop now\t1.5", Hotword("stop now", 1.5)),
    ("nan", Hotword("nan", None)),  # a word, not a number
    ("grandma nan", Hotword("grandma nan", None)),
    ("x .5e1", Hotword("x", 5.0)),
])
def test_hotword_entry_syntax(entry, want):
    assert parse_hotword(entry, "here") == want


@pytest.mark.parametrize("entry, words", [
    ("kubernetes\tlots", "not a number"), ("kubernetes -1", "must be a finite number >= 0"),
    ("3.0", "no phrase"), ("\t2", "no phrase"), ("kubernetes\t1e999", "finite"), ("route 66 2", "ends in a number"),
])
def test_bad_hotword_entries_are_named(entry, words):
    with pytest.raises(ConfigError, match=f"^here: .*{words}"):
        parse_hotword(entry, "here")


def test_hotwords_file(tmp_path):
    f = tmp_path / "hot.txt"
    f.write_text("# names\n\nKubernetes 3.0\nstop now\ngo now\t0.5\n", encoding="utf-8")
    entries = read_hotwords(f, TOK)
    assert entries == ("kubernetes\t3.0", "stop now", "go now\t0.5")
    assert [parse_hotword(e, "x") for e in entries] == [("kubernetes", 3.0), ("stop now", None), ("go now", 0.5)]
    for text, where, words in [("ok\nkubernetes\tlots\n", ":2:", "not a number"),
                               ("ok\n\n# c\nbad -2\n", ":4:", ">= 0"),
                               ("ok\nkubernetes!\n", ":2:", "cannot be spelled.*'!'"),
                               ("k8s 2\n", ":1:", "cannot be spelled.*'8'")]:
        f.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=f"{f}{where} .*{words}"):
            read_hotwords(f, TOK)
    f.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no phrase"):
        read_hotwords(f)
    with pytest.raises(ConfigError, match="does not exist"):
        read_hotwords(tmp_path / "nowhere.txt")
    f.write_bytes(b"caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_hotwords(f)


def test_lexicon_file(tmp_path):
    f = tmp_path / "lexicon.txt"
    f.write_text("# words\nyes\nNo\n\nstop s t aa p\nstop s t ao p\n<unk> spn\n!SIL sil\n[noise] nsn\n", encoding="utf-8")
    assert read_lexicon(f, TOK) == ("yes", "no", "stop")  # first column, once each, non-speech entries skipped
    f.write_text("yes\nk8s k ey\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"{f}:2: word 'k8s' cannot be spelled"):
        read_lexicon(f, TOK)
    f.write_text("<unk> spn\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no word"):
        read_lexicon(f)


def test_api_values_and_decode_yaml(tmp_path):
    from asr import config as config_mod

    assert hotword_entries({"Kubernetes": 3, "stop now": 0.5}) == ("kubernetes\t3.0", "stop now\t0.5")
    assert hotword_entries(["stop now", ("go now", None), ("route", 2)]) == ("stop now", "go now", "route\t2.0")
    for bad, words in [("kubernetes", "expected a list"), ([("x", "3")], "not a number"), ([3], "expected a phrase"),
                       ({"x": -1}, ">= 0"), ({"  ": 1}, "no phrase"), ([("route 66", None)], "ends in a number")]:
        with pytest.raises(ConfigError, match=words):
            hotword_entries(bad)
    assert lexicon_entries(["Yes", "no", "yes"]) == ("yes", "no")
    for bad, words in [([], "empty lexicon"), (["two words"], "not one word"), ("yes", "expected a list")]:
        with pytest.raises(ConfigError, match=words):
            lexicon_entries(bad)
    # decode.yaml: inline lists, in the entry syntax; checked when read, naming the file
    y = tmp_path / "decode.yaml"
    y.write_text("method: beam\nhotwords: [kubernetes 3.0, stop now]\nlexicon: [stop, now]\n")
    c = config_mod.load(DecodeConfig, y)
    assert (c.hotwords, c.lexicon) == (("kubernetes\t3.0", "stop now"), ("stop", "now"))
    config_mod.save(c, tmp_path / "again.yaml")
    assert config_mod.load(DecodeConfig, tmp_path / "again.yaml") == c
    y.write_text("hotwords: [kubernetes -3]\n")
    with pytest.raises(ConfigError, match=f"{y}.*hotwords.*>= 0"):
        config_mod.load(DecodeConfig, y)
    assert DecodeConfig(hotwords=["a"]).needs_beam and DecodeConfig(nbest=2).needs_beam
    assert not DecodeConfig().needs_beam


# ---- the recognizer
@pytest.fixture(scope="module")
def hard(tiny_model, tmp_path_factory):
    from speech import espeak_wav

    root = tmp_path_factory.mktemp("hard")
    return [(text, espeak_wav(root / f"{i}.wav", text, voice, speed)) for i, (text, voice, speed) in enumerate(HARD)]


def test_hotwords_put_misspelled_phrases_right(tiny_model, hard):
    from asr.recognizer import Recognizer

    pkg = tiny_model["package"]
    plain = Recognizer(pkg, method="beam")
    before = {str(w): plain.transcribe(w) for _, w in hard}
    wrong = [(t, w) for t, w in hard if before[str(w)] != t]
    assert len(wrong) >= 3, before  # the model misspells them without help
    fixed = {}
    for text, wav in wrong:
        fixed[text] = Recognizer(pkg, hotwords={text: 3.0}).transcribe(wav)  # a greedy package: beam for hotwords
    assert sum(fixed[t] == t for t, _ in wrong) >= len(wrong) - 1, (before, fixed)
    # a hotword is a bonus, not an order: a phrase that is not spoken does not replace what is
    other = Recognizer(pkg, hotwords={"yes go": 3.0})
    for text, wav in hard:
        if text != "yes go":
            assert other.transcribe(wav) != "yes go"
    # the boost matters: 0 changes nothing, and the default boost is decode.hotword_weight
    zero = Recognizer(pkg, hotwords=[(t, 0.0) for t, _ in wrong])
    assert [zero.transcribe(w) for _, w in wrong] == [before[str(w)] for _, w in wrong]


def test_lexicon_limits_the_output_to_its_words(tiny_model, hard):
    from asr.recognizer import Recognizer

    pkg = tiny_model["package"]
    free = [Recognizer(pkg, method="beam").transcribe(w) for _, w in hard]
    assert any(set(t.split()) - set(LEXICON) for t in free), free  # without it, non-words come out
    lex = Recognizer(pkg, lexicon=LEXICON)
    assert lex.decode_config.method == "beam"
    limited = [lex.transcribe(w) for _, w in hard]
    assert all(set(t.split()) <= set(LEXICON) for t in limited), limited
    refs = [t for t, _ in hard]
    assert jiwer.wer(refs, limited) < jiwer.wer(refs, free), (free, limited)


def test_greedy_switches_to_beam_or_is_refused(tiny_model):
    from asr.recognizer import Recognizer

    pkg = tiny_model["package"]
    assert Recognizer(pkg).decode_config.method == "greedy"
    assert Recognizer(pkg, nbest=3).decode_config.method == "beam"
    assert Recognizer(pkg, hotwords=["stop now"]).decode_config.method == "beam"
    with pytest.raises(ConfigError, match="need the beam search.*greedy"):
        Recognizer(pkg, method="greedy", lexicon=LEXICON)
    with pytest.raises(ConfigError, match="hotword 'k8s' cannot be spelled"):
        Recognizer(pkg, hotwords=["k8s"])


def test_decode_yaml_lists_reach_both_backends(tiny_model, hard, tmp_path):
    """Hotwords and a lexicon stored in a package's decode.yaml (and so in an export's runtime.json)
    are used by either backend, with the same text."""
    import shutil

    from asr import config as config_mod
    from asr.package import write_manifest
    from asr.recognizer import Recognizer

    pkg = tmp_path / "pkg"
    shutil.copytree(tiny_model["package"], pkg)
    hot = tuple(dict.fromkeys(t for t, _, _ in HARD))
    config_mod.save(DecodeConfig(hotwords=hot, lexicon=tuple(LEXICON)), pkg / "decode.yaml")
    write_manifest(pkg)
    onnx = tmp_path / "onnx"
    assert main(["export", "--model", str(pkg), "--out", str(onnx)]) == 0
    spec = json.loads((onnx / "runtime.json").read_text())
    assert spec["decode"]["hotwords"] == list(hot) and spec["decode"]["lexicon"] == LEXICON
    torch_rec, onnx_rec = Recognizer(pkg), Recognizer(onnx)
    assert torch_rec.decode_config.method == onnx_rec.decode_config.method == "beam"
    wavs = [w for _, w in hard]
    assert torch_rec.transcribe_batch(wavs) == onnx_rec.transcribe_batch(wavs)
    want = Recognizer(tiny_model["package"], hotwords=hot, lexicon=LEXICON).transcribe_batch(wavs)
    assert torch_rec.transcribe_batch(wavs) == want
    # the API's keywords replace the package's lists
    assert Recognizer(onnx, hotwords=[], lexicon=None).decode_config.hotwords == ()


def test_api_transcribe_takes_hotwords_and_lexicon(tiny_model, hard):
    import asr

    text, wav = hard[0]  # "yes go": "yesgo" without help
    assert asr.transcribe(wav, model=tiny_model["package"]) != text
    assert asr.transcribe(wav, model=tiny_model["package"], hotwords={text: 3.0}) == text
    out = asr.transcribe(hard[1][1], model=tiny_model["package"], lexicon=LEXICON)
    assert set(out.split()) <= set(LEXICON)


# ---- the commands
def test_commands_take_hotwords_lexicon_and_nbest(tiny_model, hard, tmp_path, capsys):
    pkg = str(tiny_model["package"])
    hot = tmp_path / "hot.txt"
    hot.write_text("# spoken phrases\n" + "".join(f"{t}\t3\n" for t, _, _ in HARD), encoding="utf-8")
    lex = tmp_path / "lexicon.txt"
    lex.write_text("".join(f"{w} {' '.join(w)}\n" for w in LEXICON), encoding="utf-8")
    wavs = [str(w) for _, w in hard]
    capsys.readouterr()
    assert main(["transcribe", "--model", pkg, "--quiet", *wavs]) == 0
    plain = capsys.readouterr().out.splitlines()
    assert main(["transcribe", "--model", pkg, "--quiet", "--hotwords", str(hot), "--nbest", "3", *wavs]) == 0
    # --nbest N also prints the N hypotheses: FILE rank total am lm text (FILE text when only one)
    boosted = [ln.split("\t") for ln in capsys.readouterr().out.splitlines()]
    assert all(len(f) == 2 or (len(f) == 6 and 1 <= int(f[1]) <= 3) for f in boosted) and len(boosted) > len(wavs)
    refs = [t for t, _ in hard]
    texts = [f[-1] for f in boosted if len(f) == 2 or f[1] == "1"]
    assert len(texts) == len(wavs)
    assert jiwer.wer(refs, texts) < jiwer.wer(refs, [ln.split("\t", 1)[1] for ln in plain]), (plain, boosted)
    assert main(["transcribe", "--model", pkg, "--quiet", "--lexicon", str(lex), *wavs]) == 0
    assert all(set(ln.split("\t", 1)[1].split()) <= set(LEXICON) for ln in capsys.readouterr().out.splitlines())
    # asr decode: the same options, recorded in decode_stats.json
    out = tmp_path / "dec"
    assert main(["decode", "--model", pkg, "--data", str(tiny_model["dev"]), "--out", str(out),
                 "--hotwords", str(hot), "--lexicon", str(lex), "--nbest", "2"]) == 0
    stats = json.loads((out / "decode_stats.json").read_text())
    assert (stats["method"], stats["nbest"], stats["hotwords"], stats["lexicon"]) == ("beam", 2, len(HARD), 6)
    hyps = [ln.split(maxsplit=1)[1:] for ln in (out / "hyp").read_text().splitlines()]
    assert all(set(h[0].split() if h else []) <= set(LEXICON) for h in hyps)
    # a bad line is named by FILE:LINE, without a traceback, in every command, before any work
    hot.write_text("stop now\nk8s 2\n", encoding="utf-8")
    capsys.readouterr()
    for cmd in (["transcribe", "--model", pkg, *wavs], ["decode", "--model", pkg, "--data", str(tiny_model["dev"]),
                                                         "--out", str(tmp_path / "dec2")],
                ["live", "--model", pkg]):
        assert main([*cmd, "--hotwords", str(hot)]) == 1
        err = capsys.readouterr().err
        assert f"{hot}:2:" in err and "k8s" in err and "Traceback" not in err, err
    assert not (tmp_path / "dec2").exists()
    assert main(["transcribe", "--model", pkg, "--nbest", "0", wavs[0]]) == 1
    assert "nbest" in capsys.readouterr().err


def test_live_takes_hotwords_and_lexicon(tiny_model, hard, tmp_path, monkeypatch, capsys):
    """`asr live` end to end on a fake microphone: the hotword puts "yes go" right, live."""
    import sys

    import numpy as np

    from asr.audio import read_audio
    from test_live import _FakeSD

    text, wav = hard[0]  # "yes go"
    x = read_audio(wav, 16000)
    x = np.concatenate([np.zeros(8000, np.float32), x, np.zeros(24000, np.float32)])
    hot = tmp_path / "hot.txt"
    hot.write_text(f"{text} 3\n", encoding="utf-8")
    lex = tmp_path / "lexicon.txt"
    lex.write_text("\n".join(LEXICON) + "\n", encoding="utf-8")
    finals = {}
    for name, extra in (("plain", []), ("boosted", ["--hotwords", str(hot), "--lexicon", str(lex)])):
        monkeypatch.setitem(sys.modules, "sounddevice", _FakeSD(x, 16000, block_delay=0.002))
        capsys.readouterr()
        assert main(["live", "--model", str(tiny_model["package"]), "--duration", str(len(x) / 16000 - 0.1),
                     "--max-queue-seconds", "100", *extra]) == 0
        lines = [ln.split("\r")[-1].split("] ", 1)[-1].strip() for ln in capsys.readouterr().out.split("\n")]
        finals[name] = " ".join(ln for ln in lines if ln)
    assert finals["plain"] != text and finals["boosted"] == text, finals
