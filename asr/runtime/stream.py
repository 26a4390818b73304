"""Streaming recognition: feed audio chunks of any size, get partial and final results.

``Stream(recognizer)`` picks the mode from the package:

* **unidirectional model** (package has ``stream.onnx``): features are computed incrementally
  (:class:`StreamingFeatures`), a small frame buffer (:class:`ConvFrameBuffer`) feeds the valid-in-time
  conv front end exactly the frames each output needs, and the LSTM state (h, c) is carried across
  chunks as explicit ONNX inputs/outputs. The output is the whole-utterance output whatever the
  chunking (tests/test_stream.py). Partials are the greedy text after each chunk; a final is emitted
  when the greedy output has been blank for ``endpoint_silence`` seconds after some text (the LSTM
  state is *not* reset, so finals concatenated still equal the whole-utterance text), and at
  ``finish()``.
* **BiLSTM model**: energy endpointing (:class:`asr.runtime.vad.EnergySegmenter`) cuts the audio into
  segments; the open segment is re-decoded every ``partial_interval`` seconds of new audio (default
  0.2 s, so a partial lags the audio by at most that plus one decode), and a final is emitted at each
  endpoint (after ``min_silence`` of non-speech) and at ``finish()``.

Events are :class:`StreamEvent` (kind "partial" | "final", text, start/end in seconds of stream audio,
``audio_time``: seconds of audio received when the event was produced). Finals carry ``words``
(:class:`asr.decode.align.Word`: the final text force-aligned to the segment's emissions, times in
seconds of stream audio) unless the stream was made with ``words=False``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import StreamingFeatures
from ..recognizer import Recognizer


@dataclass
class StreamEvent:
    kind: str  # "partial" or "final"
    text: str
    start: float  # seconds from the stream start
    end: float
    audio_time: float  # seconds of audio received when this event was produced
    words: tuple = ()  # asr.decode.align.Word of a final (times in seconds of stream audio); () for partials

    def __str__(self) -> str:
        return f"[{self.kind} {self.start:.2f}-{self.end:.2f}] {self.text}"


class ConvFrameBuffer:
    """Buffers feature frames for a front end that is valid in time.

    Output frame ``j`` reads input frames ``s*j .. s*j + R - 1`` (``s`` = subsampling, ``R`` =
    receptive field, 7 for x4). ``pop_ready()`` returns the frames that produce every output whose
    input is complete (or None) and keeps the frames later outputs still need.
    """

    def __init__(self, receptive_field: int, subsampling: int):
        self.R, self.s = int(receptive_field), int(subsampling)
        self.buf: np.ndarray | None = None
        self.total_in = 0
        self.total_out = 0

    def push(self, frames: np.ndarray) -> None:
        frames = np.asarray(frames, np.float32)
        if len(frames) == 0:
            return
        self.total_in += len(frames)
        self.buf = frames.copy() if self.buf is None else np.concatenate([self.buf, frames])

    def pop_ready(self) -> np.ndarray | None:
        if self.buf is None or len(self.buf) < self.R:
            return None
        k = (len(self.buf) - self.R) // self.s + 1
        block = self.buf[: self.s * (k - 1) + self.R]
        self.buf = self.buf[self.s * k:]
        self.total_out += k
        return block

    def finish(self, dim: int) -> np.ndarray | None:
        """At the end: an utterance shorter than R frames is zero-padded to R (one output), as the
        whole-utterance model does; otherwise leftover frames produce nothing."""
        if self.total_out == 0:
            n = 0 if self.buf is None else len(self.buf)
            block = np.zeros((self.R, dim), np.float32)
            if n:
                block[:n] = self.buf[: self.R]
            self.buf = None
            self.total_out = 1
            return block
        return None


class Stream:
    def __init__(self, recognizer: Recognizer, *, partial_interval: float = 0.2, endpoint: bool = True,
                 endpoint_silence: float = 1.0, keep_log_probs: bool = False, mode: str | None = None,
                 words: bool = True, **vad_kwargs):
        self.rec = recognizer
        self.words = bool(words)
        self.sr = recognizer.sample_rate
        self.mode = mode or ("state" if recognizer.streaming else "segment")
        if self.mode == "state" and not recognizer.streaming:
            recognizer.stream_session()  # raises ModelPackageError naming the package
        self.partial_interval = float(partial_interval)
        self.endpoint = endpoint
        self.keep_log_probs = keep_log_probs
        self._resamplers: dict[int, object] = {}
        self.n_samples = 0  # samples at the model rate received
        self.finals: list[StreamEvent] = []
        self._finished = False
        if self.mode == "state":
            m = recognizer.info
            self.feats = StreamingFeatures(recognizer.acoustic.numpy_features)
            self.conv = ConvFrameBuffer(m.min_input_frames, m.subsampling)
            self.sess = recognizer.stream_session()
            self.state = self.sess.initial_state(1)
            self.out_shift = recognizer.output_frame_shift
            self.endpoint_frames = max(1, int(round(endpoint_silence / self.out_shift)))
            self.n_out = 0
            self._prev = -1
            self._seg_ids: list[int] = []
            self._seg_first = None
            self._seg_last = None
            self._seg_lp: list[np.ndarray] = []
            self._last_partial = ""
            self.all_log_probs: list[np.ndarray] = []
        else:
            self.seg = recognizer.segmenter(**vad_kwargs)
            self._since_partial = 0
            self._last_partial = ""

    # ---- common ----
    @property
    def audio_time(self) -> float:
        return self.n_samples / self.sr

    @property
    def text(self) -> str:
        return " ".join(e.text for e in self.finals if e.text)

    def _to_model_rate(self, chunk, sample_rate) -> np.ndarray:
        from ..audio import downmix

        x = downmix(chunk)
        sr = self.sr if sample_rate is None else int(sample_rate)
        if sr == self.sr:
            return x.reshape(-1)
        if sr not in self._resamplers:
            from ..audio import Resampler

            self._resamplers[sr] = Resampler(sr, self.sr)
        return self._resamplers[sr].process(x.reshape(-1))

    def accept(self, chunk: np.ndarray, sample_rate: int | None = None) -> list[StreamEvent]:
        """Feed a chunk (float32 in [-1, 1], any length, ``sample_rate`` default = model rate)."""
        if self._finished:
            raise RuntimeError("Stream.accept() after finish()")
        x = self._to_model_rate(chunk, sample_rate)
        return self._accept(x)

    def finish(self) -> list[StreamEvent]:
        """End of audio: flush everything and return the last events (a final if there is text)."""
        if self._finished:
            return []
        events = []
        for r in self._resamplers.values():
            tail = r.flush()
            if len(tail):
                events += self._accept(tail)
        self._finished = True
        return events + self._finish()

    def _final(self, text, start, end, words=()) -> StreamEvent:
        ev = StreamEvent("final", text, start, end, self.audio_time, tuple(words))
        self.finals.append(ev)
        return ev

    # ---- state mode (unidirectional) ----
    def _run_frames(self, feats: np.ndarray, final: bool = False) -> list[StreamEvent]:
        if len(feats):
            self.conv.push(self.rec.normalize(feats))
        block = self.conv.pop_ready()
        if block is None and final:
            block = self.conv.finish(self.rec.info.input_dim)
        if block is None:
            return []
        lp, self.state = self.sess(block, self.state)
        if self.keep_log_probs:
            self.all_log_probs.append(lp)
        return self._consume(lp)

    def _consume(self, lp: np.ndarray) -> list[StreamEvent]:
        """Incremental greedy bookkeeping over new output frames; finals at CTC-blank endpoints."""
        events = []
        start = 0
        for t, a in enumerate(lp.argmax(-1)):
            frame = self.n_out + t
            a = int(a)
            if a != self._prev and a != 0:
                if self._seg_first is None:
                    self._seg_first = frame
                self._seg_ids.append(a)
                self._seg_last = frame
            self._prev = a
            if self.endpoint and self._seg_ids and frame - self._seg_last >= self.endpoint_frames:
                self._seg_lp.append(lp[start: t + 1])
                events.append(self._close_segment(frame + 1))
                start = t + 1
        self._seg_lp.append(lp[start:])
        if not self._seg_ids and len(self._seg_lp) > 1:  # silence: keep a short context, not hours
            tail = np.concatenate(self._seg_lp)[-25:]
            self._seg_lp = [tail]
        self.n_out += len(lp)
        return events

    def _close_segment(self, end_frame: int) -> StreamEvent:
        """The final of the open segment, whose kept emissions end at output frame ``end_frame``:
        beam text (or the incremental greedy text) and, when asked, its words."""
        lp = np.concatenate(self._seg_lp) if self._seg_lp else np.zeros((0, self.rec.info.vocab_size), np.float32)
        words: list = []
        if self.rec.decode_config.method == "beam" and len(lp):
            hyps = self.rec.decode_hypotheses([lp], nbest=1)[0]
            text, tokens = (hyps[0].text, hyps[0].tokens) if hyps else ("", ())
        else:
            text, tokens = self.rec.tokenizer.decode(self._seg_ids), self._seg_ids
        if self.words and tokens and len(lp):
            words = self.rec.words(lp, tokens, (end_frame - len(lp)) * self.out_shift)
        start = (self._seg_first or 0) * self.out_shift
        end = ((self._seg_last if self._seg_last is not None else 0) + 1) * self.out_shift
        ev = self._final(text, start, end, words)
        self._seg_ids, self._seg_first, self._seg_last, self._seg_lp = [], None, None, []
        self._last_partial = ""
        return ev

    def _partial_state(self) -> list[StreamEvent]:
        text = self.rec.tokenizer.decode(self._seg_ids)
        if text and text != self._last_partial:
            self._last_partial = text
            start = (self._seg_first or 0) * self.out_shift
            return [StreamEvent("partial", text, start, (self._seg_last + 1) * self.out_shift, self.audio_time)]
        return []

    # ---- dispatch ----
    def _accept(self, x: np.ndarray) -> list[StreamEvent]:
        self.n_samples += len(x)
        if self.mode == "state":
            events = self._run_frames(self.feats.accept(x))
            return events + self._partial_state()
        return self._accept_segment(x)

    def _finish(self) -> list[StreamEvent]:
        if self.mode == "state":
            events = self._run_frames(self.feats.finish(), final=True)
            if self._seg_ids:
                events.append(self._close_segment(self.n_out))
            return events
        return self._finish_segment()

    # ---- segment mode (BiLSTM) ----
    def _decode_segment(self, seg, final: bool) -> StreamEvent | None:
        s, e = seg.start / self.sr, min(seg.end, self.n_samples) / self.sr
        if final:
            self._last_partial = ""
            if not len(seg.audio):
                return None
            if not self.words:
                text = self.rec.transcribe(seg.audio, self.sr)
                return self._final(text, s, e) if text else None
            t = self.rec.transcribe(seg.audio, self.sr, word_timestamps=True, nbest=1)
            return self._final(t.text, s, e, [w.shifted(s) for w in t.words]) if t.text else None
        text = self.rec.transcribe(seg.audio, self.sr) if len(seg.audio) else ""
        if text and text != self._last_partial:
            self._last_partial = text
            return StreamEvent("partial", text, s, e, self.audio_time)
        return None

    def _accept_segment(self, x: np.ndarray) -> list[StreamEvent]:
        events = []
        for seg in self.seg.accept(x):
            ev = self._decode_segment(seg, final=True)
            if ev:
                events.append(ev)
            self._since_partial = 0
        if self.seg.in_speech:
            self._since_partial += len(x)
            if self._since_partial >= self.partial_interval * self.sr:
                self._since_partial = 0
                ev = self._decode_segment(self.seg.open_segment, final=False)
                if ev:
                    events.append(ev)
        else:
            self._since_partial = 0
        return events

    def _finish_segment(self) -> list[StreamEvent]:
        events = []
        for seg in self.seg.flush():
            ev = self._decode_segment(seg, final=True)
            if ev:
                events.append(ev)
        return events
