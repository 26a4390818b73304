"""Word times and confidences (CTC forced alignment, asr/decode/align.py), N-best lists with their
scores, and the Transcript results of the recognizer, the API, the stream and transcribe_long."""
from __future__ import annotations

import itertools
import math

import jiwer
import numpy as np
import pytest

from _runtime_helpers import exported_package, spaced_words, trained_package
from asr.decode.align import Word, align_words, ctc_log_likelihood, forced_align, word_token_ranges
from asr.errors import ASRError
from asr.tokens import BPETokenizer, CharTokenizer


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(np.float32)


def _peaky(rng, T: int, tokens, V: int) -> np.ndarray:
    """CTC-like emissions: mostly blank, each token spiking once, in order, plus noise."""
    logits = rng.standard_normal((T, V)) * 1.5
    logits[:, 0] += 4
    at = np.sort(rng.choice(np.arange(1, T - 1), size=len(tokens), replace=False))
    for t, k in zip(at, tokens):
        logits[t, k] += 9
    return _log_softmax(logits)


def _torchaudio_spans(lp: np.ndarray, tokens) -> tuple[np.ndarray, float]:
    import torch
    import torchaudio.functional as F

    labels, scores = F.forced_align(torch.from_numpy(lp)[None], torch.tensor([list(tokens)]), blank=0)
    spans = F.merge_tokens(labels[0], scores[0].exp(), blank=0)
    return np.array([[s.start, s.end] for s in spans]), float(scores.sum())


@pytest.mark.parametrize("seed", range(6))
def test_alignment_agrees_with_torchaudio_forced_align(seed):
    rng = np.random.default_rng(seed)
    V = 12
    T = int(rng.integers(30, 160))
    tokens = rng.integers(1, V, int(rng.integers(1, T // 3)))
    if seed % 2:  # repeated tokens need a blank between them
        tokens[1::3] = tokens[::3][: len(tokens[1::3])]
    for lp in (_peaky(rng, T, tokens, V), _log_softmax(rng.standard_normal((T, V)) * 3)):
        al = forced_align(lp, tokens)
        want, score = _torchaudio_spans(lp, tokens)
        assert al.spans.shape == want.shape
        assert np.abs(al.spans - want).max() <= 1, (al.spans.tolist(), want.tolist())
        assert al.score == pytest.approx(score, abs=1e-3)  # the same (Viterbi) path score
        assert (al.labels[al.labels != 0] != 0).all() and len(al.labels) == T


def test_alignment_of_real_emissions_agrees_with_torchaudio(tiny_model):
    """The tiny model's emissions of a dev utterance, aligned to its reference transcript."""
    from asr.audio import read_audio
    from asr.data.datadir import read_kaldi_map
    from asr.recognizer import Recognizer

    rec = Recognizer(tiny_model["package"])
    wavs, texts = read_kaldi_map(tiny_model["dev"] / "wav.scp"), read_kaldi_map(tiny_model["dev"] / "text")
    for utt in sorted(wavs):
        lp = rec.log_probs(read_audio(wavs[utt], rec.sample_rate))
        tokens = rec.tokenizer.encode(texts[utt])
        want, score = _torchaudio_spans(lp, tokens)
        al = forced_align(lp, tokens)
        assert np.abs(al.spans - want).max() <= 1, utt
        assert al.score == pytest.approx(score, rel=1e-4, abs=1e-3)


def test_ctc_log_likelihood_is_the_ctc_loss():
    import torch

    rng = np.random.default_rng(3)
    for T, L in [(20, 4), (50, 12), (9, 4), (5, 0)]:
        lp = _log_softmax(rng.standard_normal((T, 7)) * 2)
        tokens = rng.integers(1, 7, L)
        want = -torch.nn.functional.ctc_loss(torch.from_numpy(lp)[:, None].double(), torch.tensor(tokens)[None],
                                             [T], [L], reduction="sum").item()
        assert ctc_log_likelihood(lp, tokens) == pytest.approx(want, abs=1e-6)


def test_alignment_refuses_what_cannot_align():
    lp = _log_softmax(np.zeros((3, 5)))
    with pytest.raises(ASRError, match="at least 5 frames"):
        forced_align(lp, [1, 1, 2, 3])  # 4 tokens and one repeat need 5 frames
    with pytest.raises(ASRError, match="blank"):
        forced_align(lp, [0, 2])
    with pytest.raises(ASRError, match="ids in 1..4"):
        forced_align(lp, [7])
    assert forced_align(lp, []).spans.shape == (0, 2)
    assert align_words(lp, [], CharTokenizer(), 0.04) == []


def test_word_token_ranges_for_characters_and_bpe():
    ch = CharTokenizer()
    ids = ch.encode("go up now")
    assert [ch.decode(ids[a:b]) for a, b in word_token_ranges(ids, ch)] == ["go", "up", "now"]
    padded = [1] + ids + [1, 1]
    assert [ch.decode(padded[a:b]) for a, b in word_token_ranges(padded, ch)] == ["go", "up", "now"]
    bpe = BPETokenizer(b"", ["<blank>", "<unk>", "\u2581go", "\u2581u", "p", "\u2581", "now", "\u2581no", "w"])
    ids = [2, 3, 4, 5, 6, 7, 8]  # ▁go ▁u p ▁ now ▁no w
    assert [bpe.decode(ids[a:b]) for a, b in word_token_ranges(ids, bpe)] == ["go", "up", "now", "now"]
    assert bpe.decode(ids) == "go up now now"


def test_words_fall_within_100_ms_of_separately_synthesised_words(tmp_path):
    """Words synthesised alone with known silences between them; emissions consistent with their
    spans (a token spike per letter inside its word, the separator at the word's end, as a trained
    CTC model emits them): every word's start and end within 100 ms of the truth, in seconds of
    the input (with an offset, as for a piece of a long file), and confidences in [0, 1]."""
    got = spaced_words("please open the door for me", tmp_path, gap=0.35, speed=150)
    if got is None:
        pytest.skip("espeak-ng not installed")
    audio, spans = got
    tok = CharTokenizer()
    shift, offset = 0.04, 12.5
    T = int(math.ceil(len(audio) / 16000 / shift)) + 3
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((T, tok.vocab_size))
    logits[:, 0] += 6
    tokens: list[int] = []
    for i, (word, s, e) in enumerate(spans):
        ids = tok.encode(word)
        frames = np.linspace(s / shift, e / shift - 1, len(ids) + 1)[:-1].round().astype(int)
        frames[-1] = int(round(e / shift)) - 1  # the last letter's spike ends with the word
        for f, k in zip(frames, ids):
            logits[f, k] += 12
        tokens += ids
        if i < len(spans) - 1:  # the separator spikes in the silence, where the word ends
            tokens.append(tok.space_id)
            logits[int(round(e / shift)), tok.space_id] += 12
    lp = _log_softmax(logits)
    words = align_words(lp, tokens, tok, shift, offset)
    assert [w.word for w in words] == [s[0] for s in spans]
    for w, (_, s, e) in zip(words, spans):
        assert abs(w.start - (offset + s)) <= 0.1, (w, s)
        assert abs(w.end - (offset + e)) <= 0.1, (w, e)
        assert 0.0 <= w.confidence <= 1.0 and w.start < w.end


@pytest.fixture(scope="module")
def packages(tiny_model, tmp_path_factory):
    from asr.cli import main

    onnx = tmp_path_factory.mktemp("words_onnx") / "onnx"
    assert main(["export", "--model", str(tiny_model["package"]), "--out", str(onnx)]) == 0
    return {"torch": tiny_model["package"], "onnx": onnx}


def test_tiny_model_times_separately_synthesised_words_loosely(packages, tmp_path):
    """The seconds-trained model on words of its training sentences, synthesised alone with 0.5 s
    between them (it misrecognises many: loose bounds). Its words are ordered, do not overlap,
    stay within the speech, and the first starts where the speech does."""
    from asr.recognizer import Recognizer

    got = spaced_words("stop now go up", tmp_path, gap=0.5, speed=160)
    if got is None:
        pytest.skip("espeak-ng not installed")
    audio, spans = got
    pad = 0.2
    x = np.concatenate([np.zeros(int(pad * 16000), np.float32), audio, np.zeros(int(pad * 16000), np.float32)])
    for kind, pkg in packages.items():
        t = Recognizer(pkg).transcribe(x, 16000, word_timestamps=True)
        assert t.words and " ".join(w.word for w in t.words) == t.text
        assert jiwer.cer("stop now go up", t.text) <= 0.6, t.text
        assert all(w.start < w.end and 0.0 <= w.confidence <= 1.0 for w in t.words)
        assert all(a.end <= b.start + 1e-9 for a, b in zip(t.words, t.words[1:]))
        first, last = spans[0][1] + pad, spans[-1][2] + pad
        assert abs(t.words[0].start - first) <= 0.15, (kind, t.words)
        assert first - 0.15 <= t.words[0].start and t.words[-1].end <= last + 0.2, (kind, t.words)


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_both_backends_give_the_same_words_and_times(packages, tiny_model, method, tmp_path):
    import asr
    import soundfile as sf
    from asr.recognizer import Recognizer, Transcript

    wav = sorted((tiny_model["train"] / "wav").glob("*u3.wav"))[0]  # "stop now"
    from asr.audio import read_audio_with_rate

    x, sr = read_audio_with_rate(wav)
    long = tmp_path / "long.flac"  # 75 s: pieces of at most 30 s, cut in the silence
    sf.write(long, np.concatenate([x, np.zeros(70 * sr, np.float32), x]), sr, format="FLAC")
    res = {}
    for kind, pkg in packages.items():
        rec = Recognizer(pkg, method=method, beam=8)
        plain = rec.transcribe(wav)
        t = rec.transcribe(wav, word_timestamps=True)
        assert isinstance(plain, str) and isinstance(t, Transcript)
        assert t.text == plain and " ".join(w.word for w in t.words) == plain
        assert all(isinstance(w, Word) and 0.0 <= w.confidence <= 1.0 for w in t.words)
        assert all(w.start < w.end for w in t.words)
        assert all(a.end <= b.start + 1e-9 for a, b in zip(t.words, t.words[1:]))
        assert t.duration == pytest.approx(len(x) / sr, abs=1e-3)
        lt = rec.transcribe(long, word_timestamps=True)
        assert lt.text == rec.transcribe(long) and len(lt.segments) >= 2
        assert " ".join(w.word for w in lt.words) == lt.text
        assert all(a.end <= b.start + 1e-9 for a, b in zip(lt.words, lt.words[1:]))
        for seg in lt.segments:
            assert all(seg.start - 1e-9 <= w.start and w.end <= seg.end + 1e-9 for w in seg.words)
        if method == "greedy":  # (the tiny model's beam search spells noise in the 70 s of silence)
            half = len(lt.words) // 2
            assert [w.word for w in lt.words[:half]] == [w.word for w in lt.words[half:]] == [w.word for w in t.words]
            for a, b in zip(lt.words[:half], lt.words[half:]):  # the second copy starts 70 s + len(x) later
                assert b.start - a.start == pytest.approx(70 + len(x) / sr, abs=2 * rec.output_frame_shift)
            segs = rec.transcribe_long(long, word_timestamps=True)
            assert [w.word for s in segs for w in s.words] == [w.word for w in lt.words]
            for s in segs:
                assert s.words and all(s.start - 0.05 <= w.start and w.end <= s.end + 0.05 for w in s.words)
            assert all(not s.words for s in rec.transcribe_long(long))  # plain: no words, as before
        api = asr.transcribe(wav, model=pkg, word_timestamps=True)  # the package's own decode settings
        assert api.words == Recognizer(pkg).transcribe(wav, word_timestamps=True).words
        assert isinstance(asr.transcribe(wav, model=pkg), str)
        res[kind] = (t, lt)
    for a, b in zip(res["torch"], res["onnx"]):
        assert [w.word for w in a.words] == [w.word for w in b.words]
        assert [x for w in a.words for x in (w.start, w.end)] == \
            pytest.approx([x for w in b.words for x in (w.start, w.end)], abs=1e-6)
        assert [w.confidence for w in a.words] == pytest.approx([w.confidence for w in b.words], abs=2e-3)


def test_nbest_lists_carry_their_scores(packages, tiny_model):
    from asr.audio import read_audio
    from asr.recognizer import Recognizer

    wav = sorted((tiny_model["dev"] / "wav").glob("*.wav"))[0]
    rec = Recognizer(packages["onnx"], method="beam", beam=8)
    lp = rec.log_probs(read_audio(wav, rec.sample_rate))
    t = rec.transcribe(wav, nbest=4)
    assert 1 <= len(t.nbest) <= 4 and t.words == ()  # words only when asked
    assert t.nbest[0].text == t.text == rec.transcribe(wav)
    scores = [h.score for h in t.nbest]
    assert scores == sorted(scores, reverse=True) and len({h.text for h in t.nbest}) == len(t.nbest)
    alpha = rec.decode_config.alpha
    for h in t.nbest:
        assert h.score == pytest.approx(h.am_score + alpha * h.lm_score + h.bonus, abs=1e-4)
        exact = ctc_log_likelihood(lp, h.tokens)  # the beam's am_score sums the alignments pruning kept
        assert -math.inf < h.am_score <= exact + 1e-3
    assert len(rec.transcribe(wav, nbest=2).nbest) <= 2
    assert len(Recognizer(packages["onnx"], method="beam", beam=8, nbest=3).transcribe(
        wav, word_timestamps=True).nbest) == min(3, len(t.nbest))
    g = Recognizer(packages["onnx"], method="greedy").transcribe(wav, nbest=5)
    assert len(g.nbest) == 1 and g.nbest[0].am_score == pytest.approx(ctc_log_likelihood(lp, g.nbest[0].tokens))
    with pytest.raises(ASRError, match="nbest"):
        rec.transcribe(wav, nbest=0)


def test_nbest_of_pieces_is_the_exact_top_of_their_sums():
    from asr.decode.beam import Hypothesis
    from asr.recognizer.core import combine_nbest

    rng = np.random.default_rng(1)
    pieces = [[Hypothesis((k + 2,), f"p{i}h{k}", float(s), float(s) - 1, 0.5, 0.0)
               for k, s in enumerate(sorted(rng.normal(size=n) * 3, reverse=True))] for i, n in enumerate([3, 1, 4])]
    got = combine_nbest(pieces, 5, separator=1)
    brute = sorted(itertools.product(*pieces), key=lambda c: -sum(h.score for h in c))[:5]
    assert [h.text for h in got] == [" ".join(h.text for h in c) for c in brute]
    assert [h.score for h in got] == pytest.approx([sum(h.score for h in c) for c in brute])
    assert got[0].tokens == (pieces[0][0].tokens[0], 1, pieces[1][0].tokens[0], 1, pieces[2][0].tokens[0])
    assert got[0].am_score == pytest.approx(sum(p[0].am_score for p in pieces))
    assert combine_nbest([[], pieces[1]], 3)[0].text == pieces[1][0].text  # an empty piece adds nothing


def test_stream_finals_carry_words(tmp_path_factory):
    from asr.runtime import Recognizer, Stream

    got = trained_package(tmp_path_factory.mktemp("words_trained"))
    if isinstance(got, str):
        pytest.skip(got)
    pkg, audio, text = got
    rec = Recognizer(pkg)
    x = np.concatenate([np.zeros(8000, np.float32), audio, np.zeros(16000, np.float32), audio,
                        np.zeros(16000, np.float32)])
    s = Stream(rec, mode="segment")
    events = [e for i in range(0, len(x), 1600) for e in s.accept(x[i:i + 1600])] + s.finish()
    finals = [e for e in events if e.kind == "final"]
    assert [e.text for e in finals] == [text, text]
    for e in finals:
        assert " ".join(w.word for w in e.words) == e.text
        assert all(e.start - 1e-6 <= w.start < w.end <= e.end + 1e-6 for w in e.words)
        assert all(0.0 <= w.confidence <= 1.0 for w in e.words)
    assert finals[1].words[0].start - finals[0].words[0].start == pytest.approx(1 + len(audio) / 16000, abs=0.1)
    assert all(e.words == () for e in events if e.kind == "partial")
    assert all(e.words == () for e in Stream(rec, mode="segment", words=False).accept(x) if e.kind == "final")


def test_state_stream_finals_carry_words_in_stream_time(tmp_path_factory):
    """The unidirectional (LSTM state) stream: each final's words are its text, aligned to the
    emissions of its own stretch of the stream, in seconds of the stream."""
    from asr.runtime import Recognizer, Stream

    rec = Recognizer(exported_package(tmp_path_factory.mktemp("words_uni"), bidirectional=False))
    rng = np.random.default_rng(7)
    x = np.concatenate([part for dur, sil in [(0.3, 1.1), (0.9, 0.6), (0.5, 0.9)]
                        for part in (np.zeros(int(sil * 16000), np.float32),
                                     (0.1 * rng.standard_normal(int(dur * 16000))).astype(np.float32))])
    s = Stream(rec, endpoint=True, endpoint_silence=0.12)
    events = [e for i in range(0, len(x), 1600) for e in s.accept(x[i:i + 1600])] + s.finish()
    finals = [e for e in events if e.kind == "final" and e.text]
    assert finals
    lp = rec.log_probs(x)
    for e in finals:
        assert " ".join(w.word for w in e.words) == e.text
        assert all(0 <= w.start < w.end <= len(lp) * rec.output_frame_shift + 1e-6 for w in e.words)
        assert all(a.end <= b.start + 1e-9 for a, b in zip(e.words, e.words[1:]))
    words = [w for e in finals for w in e.words]
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))


def test_live_display_shows_the_words_of_finals():
    import io

    from asr.runtime.live import LineDisplay
    from asr.runtime.stream import StreamEvent

    ev = StreamEvent("final", "go up", 1.0, 2.0, 2.5, (Word("go", 1.1, 1.4, 0.91), Word("up", 1.5, 1.9, 0.42)))
    out = io.StringIO()
    LineDisplay(out, words=True).final(ev)
    assert out.getvalue().splitlines()[-1] == "    go(1.10-1.40 0.91) up(1.50-1.90 0.42)"
    out = io.StringIO()
    LineDisplay(out).final(ev)
    assert out.getvalue().strip().endswith("go up") and "0.91" not in out.getvalue()
