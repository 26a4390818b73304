"""Streaming: chunked == whole for the unidirectional model (LSTM state carried in ONNX), VAD
segments with bounded-rate partials for the BiLSTM, recognition of a real (overfit) utterance."""
from __future__ import annotations

import numpy as np
import pytest

from _runtime_helpers import exported_package, trained_package


def _noise_bursts(seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for dur, sil in [(0.3, 1.1), (0.9, 0.6), (0.5, 0.9)]:
        parts.append(np.zeros(int(sil * 16000), np.float32))
        parts.append((0.1 * rng.standard_normal(int(dur * 16000))).astype(np.float32))
    parts.append(np.zeros(8000, np.float32))
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def uni(tmp_path_factory):
    from asr.runtime import Recognizer

    return Recognizer(exported_package(tmp_path_factory.mktemp("st_uni"), bidirectional=False))


@pytest.fixture(scope="module")
def bi(tmp_path_factory):
    from asr.runtime import Recognizer

    return Recognizer(exported_package(tmp_path_factory.mktemp("st_bi"), bidirectional=True))


def _run(stream, x, sizes, sample_rate=None):
    events, pos, i = [], 0, 0
    while pos < len(x):
        n = int(sizes[i % len(sizes)])
        events += stream.accept(x[pos:pos + n], sample_rate)
        pos += n
        i += 1
    return events + stream.finish()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unidirectional_chunked_equals_whole(uni, seed):
    from asr.runtime import Stream

    rng = np.random.default_rng(seed)
    x = _noise_bursts(seed)
    whole = uni.log_probs(x)
    sizes = rng.integers(1, 6000, size=200) if seed else [1, 7, 160, 161, 999, 3200, 17]
    s = Stream(uni, endpoint=False, keep_log_probs=True)
    assert s.mode == "state"
    events = _run(s, x, sizes)
    chunked = np.concatenate(s.all_log_probs)
    assert chunked.shape == whole.shape
    assert np.abs(chunked - whole).max() < 1e-5
    assert np.array_equal(chunked.argmax(-1), whole.argmax(-1))
    assert s.text == uni.transcribe(x, 16000)
    assert [e.kind for e in events].count("final") == (1 if s.text else 0)


def test_unidirectional_short_and_resampled_input(uni):
    from asr.runtime import Stream

    # shorter than the conv receptive field: padded like the whole-utterance model
    for n in (0, 1, 300, 1000):
        x = (0.1 * np.random.default_rng(n).standard_normal(n)).astype(np.float32)
        s = Stream(uni, endpoint=False, keep_log_probs=True)
        _run(s, x, [97]) if n else s.finish()
        assert np.abs(np.concatenate(s.all_log_probs) - uni.log_probs(x)).max() < 1e-5
    # 44.1 kHz chunks are resampled statefully: same text as resampling the whole signal
    from asr.audio import resample

    x44 = resample(_noise_bursts(3), 16000, 44100)
    s = Stream(uni, endpoint=False)
    _run(s, x44, [441 * 3, 4410, 1000], sample_rate=44100)
    assert s.text == uni.transcribe(x44, sample_rate=44100)


def test_bilstm_segments_and_partial_rate(bi):
    from asr.runtime import Stream

    x = _noise_bursts(5)
    s = Stream(bi, partial_interval=0.2)
    assert s.mode == "segment"
    decode_times = []
    orig = s._decode_segment

    def spy(seg, final):
        if not final:
            decode_times.append(s.audio_time)
        return orig(seg, final)

    s._decode_segment = spy
    _run(s, x, [800])  # 50 ms chunks
    # partials re-decode the open segment at most every 200 ms (+ one chunk) of new audio
    gaps = np.diff(decode_times)
    assert len(decode_times) >= 4
    assert gaps[gaps < 0.5].max() <= 0.2 + 0.05 + 1e-6
    assert gaps.min() >= 0.2 - 1e-6


def test_trained_model_stream_recognises(tmp_path_factory):
    """The overfit model: streamed in 100 ms chunks (state mode and VAD-segment mode)."""
    import time

    from asr.runtime import Recognizer, Stream

    got = trained_package(tmp_path_factory.mktemp("st_trained"))
    if isinstance(got, str):
        pytest.skip(got)
    pkg, audio, text = got
    rec = Recognizer(pkg)
    assert rec.transcribe(audio, 16000) == text
    x = np.concatenate([np.zeros(8000, np.float32), audio, np.zeros(16000, np.float32)])
    for mode in (["state"] if rec.streaming else []) + ["segment"]:
        s = Stream(rec, mode=mode)
        events = []
        for i in range(0, len(x), 1600):
            events += s.accept(x[i:i + 1600])
        t0 = time.perf_counter()
        events += s.finish()
        assert time.perf_counter() - t0 < 1.0
        assert s.text == text, (mode, [str(e) for e in events])
        assert any(e.kind == "partial" for e in events)
        final = [e for e in events if e.kind == "final"][0]
        assert 0.3 <= final.start and final.end <= len(x) / 16000


def test_trained_model_long_audio_segments(tmp_path_factory, tmp_path):
    """transcribe_long: a file read in small blocks, cut by the VAD, one timed segment per utterance."""
    from asr.audio import write_wav
    from asr.runtime import Recognizer

    got = trained_package(tmp_path_factory.mktemp("long_trained"))
    if isinstance(got, str):
        pytest.skip(got)
    pkg, audio, text = got
    rec = Recognizer(pkg)
    gap = np.zeros(16000, np.float32)
    x = np.concatenate([gap, audio, gap, gap, audio, gap, audio, gap])
    wav = tmp_path / "long.wav"
    write_wav(wav, x, 16000)
    segs = rec.transcribe_long(wav, block_seconds=0.7)  # blocks smaller than an utterance
    assert [s.text for s in segs] == [text] * 3
    starts = [1.0, 1.0 + len(audio) / 16000 + 2.0, 1.0 + 2 * len(audio) / 16000 + 3.0]
    for s, t in zip(segs, starts):
        assert abs(s.start - (t + 0.2)) < 0.35 and s.end > s.start
    assert [s.text for s in rec.transcribe_long(wav, block_seconds=30)] == [text] * 3


def test_unidirectional_endpoints_split_but_keep_the_text(uni):
    """CTC-blank endpointing emits finals mid-stream without resetting the LSTM state."""
    from asr.runtime import Stream

    x = _noise_bursts(7)
    s = Stream(uni, endpoint=True, endpoint_silence=0.12)
    events = _run(s, x, [1600])
    finals = [e for e in events if e.kind == "final"]
    whole = uni.transcribe(x, 16000)
    assert s.text.replace(" ", "") == whole.replace(" ", "")
    assert len(finals) >= 2
    assert all(a.end <= b.start + 1e-6 for a, b in zip(finals, finals[1:]))
