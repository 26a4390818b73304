"""Energy-based voice activity detection and segmentation with bounded memory.

:class:`EnergySegmenter` is fed audio blocks of any size and returns finished speech segments
(start/end sample and audio). A 10 ms frame is speech when its energy is above
``max(min_db, noise_floor + margin_db)`` dBFS, where the noise floor tracks the quietest recent
frames. A segment starts at the first speech frame (minus ``pre_pad`` of audio), ends after
``min_silence`` of non-speech (plus ``post_pad``), and is cut at ``max_segment`` seconds (at the
quietest frame of its last ``search`` seconds) so memory stays bounded on any input.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Segment:
    start: int  # first sample (absolute, at the segmenter's sample rate)
    end: int  # one past the last sample
    audio: np.ndarray | None = None

    def times(self, sample_rate: int) -> tuple[float, float]:
        return self.start / sample_rate, self.end / sample_rate


class EnergySegmenter:
    def __init__(
        self,
        sample_rate: int = 16000,
        *,
        frame_ms: float = 10.0,
        min_db: float = -45.0,
        margin_db: float = 12.0,
        min_speech: float = 0.08,
        min_silence: float = 0.35,
        pre_pad: float = 0.2,
        post_pad: float = 0.2,
        max_segment: float = 20.0,
        search: float = 3.0,
    ):
        self.sr = sample_rate
        self.frame = max(1, int(round(sample_rate * frame_ms / 1000)))
        self.min_db, self.margin_db = min_db, margin_db
        self.min_speech_frames = max(1, int(round(min_speech * sample_rate / self.frame)))
        self.min_sil_frames = max(1, int(round(min_silence * sample_rate / self.frame)))
        self.pre_frames = int(round(pre_pad * sample_rate / self.frame))
        self.post_frames = int(round(post_pad * sample_rate / self.frame))
        self.max_frames = max(1, int(round(max_segment * sample_rate / self.frame)))
        self.search_frames = max(1, int(round(search * sample_rate / self.frame)))
        self.reset()

    def reset(self) -> None:
        self._rest = np.zeros(0, np.float32)  # samples not yet forming a whole frame
        self._frame_idx = 0  # frames seen
        self.noise_db = -70.0
        self._pre: list[np.ndarray] = []  # recent non-speech frames (pre-roll)
        self._seg: list[np.ndarray] | None = None  # frames of the open segment
        self._seg_db: list[float] = []
        self._seg_start = 0  # frame index of the open segment's first frame
        self._speech_run = 0
        self._silence_run = 0
        self._last_speech = 0  # index within the open segment of the last speech frame (+1)

    # ---- public ----
    @property
    def in_speech(self) -> bool:
        return self._seg is not None

    @property
    def open_segment(self) -> Segment | None:
        """The segment being collected (audio so far), or None."""
        if self._seg is None:
            return None
        audio = np.concatenate(self._seg) if self._seg else np.zeros(0, np.float32)
        s = self._seg_start * self.frame
        return Segment(s, s + len(audio), audio)

    def accept(self, x: np.ndarray) -> list[Segment]:
        x = np.concatenate([self._rest, np.asarray(x, np.float32).reshape(-1)])
        n = len(x) // self.frame
        self._rest = x[n * self.frame:].copy()
        out: list[Segment] = []
        if n == 0:
            return out
        frames = x[: n * self.frame].reshape(n, self.frame)
        db = 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-10)
        for i in range(n):
            seg = self._step(frames[i], float(db[i]))
            if seg is not None:
                out.append(seg)
        return out

    def flush(self) -> list[Segment]:
        out = []
        if len(self._rest):
            pad = np.zeros(self.frame - len(self._rest), np.float32)
            rest = self._rest
            self._rest = np.zeros(0, np.float32)
            out += self.accept(np.concatenate([rest, pad]))
            # the padding is not real audio: trim it off a segment that ends there
        if self._seg is not None and self._seg and self._last_speech > 0:
            out.append(self._close(self._last_speech + self.post_frames))
        self._seg = None
        return out

    # ---- internals ----
    def _threshold(self) -> float:
        return max(self.min_db, self.noise_db + self.margin_db)

    def _step(self, frame: np.ndarray, db: float) -> Segment | None:
        idx = self._frame_idx
        self._frame_idx += 1
        speech = db > self._threshold()
        if not speech:  # track the noise floor: fast down, slow up
            self.noise_db = db if db < self.noise_db else 0.995 * self.noise_db + 0.005 * db
            self.noise_db = max(self.noise_db, -90.0)
        if self._seg is None:
            self._pre.append(frame)
            self._speech_run = self._speech_run + 1 if speech else 0
            keep = self.pre_frames + self._speech_run
            if len(self._pre) > keep:
                del self._pre[: len(self._pre) - keep]
            if self._speech_run >= self.min_speech_frames:
                self._seg = list(self._pre)
                self._seg_db = [0.0] * len(self._seg)
                self._seg_start = idx + 1 - len(self._seg)
                self._pre = []
                self._silence_run = 0
                self._last_speech = len(self._seg)
            return None
        self._seg.append(frame)
        self._seg_db.append(db)
        if speech:
            self._silence_run = 0
            self._last_speech = len(self._seg)
        else:
            self._silence_run += 1
            if self._silence_run >= max(self.min_sil_frames, self.post_frames):
                return self._close(self._last_speech + self.post_frames)
        if len(self._seg) >= self.max_frames:
            lo = max(1, len(self._seg) - self.search_frames)
            cut = lo + int(np.argmin(self._seg_db[lo:]))
            return self._close(cut, keep_rest=True)
        return None

    def _close(self, n_frames: int, keep_rest: bool = False) -> Segment:
        n_frames = min(n_frames, len(self._seg))
        audio = np.concatenate(self._seg[:n_frames])
        start = self._seg_start * self.frame
        seg = Segment(start, start + len(audio), audio)
        if keep_rest:  # forced cut inside speech: the rest opens the next segment
            self._seg = self._seg[n_frames:]
            self._seg_db = self._seg_db[n_frames:]
            self._seg_start += n_frames
            self._last_speech = max(0, self._last_speech - n_frames)
        else:
            rest = self._seg[n_frames:]
            self._seg = None
            self._seg_db = []
            self._pre = rest[-self.pre_frames:] if self.pre_frames else []
            self._speech_run = 0
        return seg


def segment_audio(x: np.ndarray, sample_rate: int = 16000, **kwargs) -> list[Segment]:
    seg = EnergySegmenter(sample_rate, **kwargs)
    return seg.accept(x) + seg.flush()
