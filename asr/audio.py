"""Audio I/O: the one place that reads, mixes down, resamples and writes audio.

Torch-free on purpose (the ONNX runtime imports it). Reading goes through ``soundfile``
(libsndfile: wav, flac, ogg/vorbis, mp3); multi-channel audio is mixed down by the mean of the
channels; integer PCM is scaled to float32 in [-1, 1) (floating-point files are returned as
stored). Every failure a user can fix raises :class:`asr.errors.AudioError` naming the path. A file
shorter than its header says (a truncated WAV, or an MP3 shorter than its Xing/Info header's stream
size) is refused, naming what is missing: libsndfile would return the part that is there as if it
were the whole recording.

Resampling is a numpy windowed-sinc (Kaiser) polyphase filter that reproduces
``torchaudio.functional.resample(x, orig, new, **RESAMPLE_KWARGS)`` (same kernel construction,
same padding and output length; max abs difference ~1e-6, see tests/test_audio.py). An exotic
rate whose exact ratio to the target needs a huge kernel (16001 Hz, 22254 Hz, 44056 Hz) is
resampled as the nearest rate on a coarse grid (16000, 22250, 44050 Hz; under 0.2 % off). The
:class:`Resampler` is stateful, so long files are resampled block by block with output identical
to resampling the whole file (:func:`iter_audio_blocks`).
"""
from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from .atomic import atomic_path
from .errors import AudioError

SAMPLE_RATE = 16000

#: Resampling filter settings. ``torchaudio.functional.resample(x, orig, new, **RESAMPLE_KWARGS)``
#: gives the same output as :func:`resample` (use it where audio is already a torch tensor).
LOWPASS_FILTER_WIDTH = 16
ROLLOFF = 0.99
KAISER_BETA = 14.769656459379492
RESAMPLE_KWARGS = dict(
    lowpass_filter_width=LOWPASS_FILTER_WIDTH,
    rolloff=ROLLOFF,
    resampling_method="sinc_interp_kaiser",
    beta=KAISER_BETA,
)

_CONVERT_HINT = "convert it, e.g. `ffmpeg -i IN -ac 1 -ar 16000 OUT.wav` or `sox IN -c 1 -r 16000 OUT.wav`"


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    num_frames: int
    channels: int
    duration: float  # seconds


# --------------------------------------------------------------------------------------------
# Resampling


@lru_cache(maxsize=32)
def _polyphase_kernel(orig: int, new: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Kernel for rates already reduced by their gcd.

    Returns ``(h, starts, width, K)``: ``h`` (new, S) float32 trimmed per-phase taps, ``starts``
    (new,) offset of each phase's taps inside the torchaudio frame of length ``K = 2*width+orig``.
    Output sample ``k*new + j`` = ``sum_s xpad[k*orig + starts[j] + s] * h[j, s]`` where ``xpad`` is
    the input with ``width`` zeros in front (exactly torchaudio's conv1d with stride ``orig``).
    """
    lpw = LOWPASS_FILTER_WIDTH
    base = min(orig, new) * ROLLOFF
    width = math.ceil(lpw * orig / base)
    K = 2 * width + orig
    idx = np.arange(-width, width + orig, dtype=np.float64) / orig
    # torchaudio builds this term in float32 (arange with the default dtype); match it.
    phase = (np.arange(0, -new, -1, dtype=np.float32) / np.float32(new)).astype(np.float64)
    t = (phase[:, None] + idx[None, :]) * base
    inside = np.abs(t) < lpw  # taps outside are ~1e-23 in torchaudio (sin(k*pi) * 1/i0(beta))
    t = np.clip(t, -lpw, lpw)
    window = np.i0(KAISER_BETA * np.sqrt(1.0 - (t / lpw) ** 2)) / np.i0(KAISER_BETA)
    t = t * np.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        kern = np.where(t == 0, 1.0, np.sin(t) / t)
    kern = kern * window * (base / orig)
    kern = np.where(inside, kern, 0.0)
    # Trim every phase to a common support length S.
    first = np.argmax(inside, axis=1)
    last = K - np.argmax(inside[:, ::-1], axis=1)
    S = int((last - first).max())
    starts = np.minimum(first, K - S)
    h = np.stack([kern[j, s : s + S] for j, s in enumerate(starts)]).astype(np.float32)
    return h, starts.astype(np.int64), width, K


@lru_cache(maxsize=32)
def _strategy(orig: int, new: int):
    """``(taps, full_t, width, K)``: ``taps`` = [(input phase p, output phase j, offset a, g)] for the
    correlate route (small ratios), else None and ``full_t`` = (K, new) dense kernel matrix."""
    h, starts, width, K = _polyphase_kernel(orig, new)
    S = h.shape[1]
    full = np.zeros((new, K), dtype=np.float32)
    for j in range(new):
        full[j, starts[j] : starts[j] + S] = h[j]
    if orig * new > 8:
        return None, np.ascontiguousarray(full.T), width, K
    Q = -(-K // orig)
    padded = np.zeros((new, Q * orig), dtype=np.float32)
    padded[:, :K] = full
    taps = []
    for p in range(orig):
        for j in range(new):
            g = padded[j, p::orig]
            nz = np.flatnonzero(g)
            if len(nz):
                taps.append((p, j, int(nz[0]), np.ascontiguousarray(g[nz[0] : nz[-1] + 1])))
    return taps, None, width, K


#: Largest exact polyphase kernel (output phases x taps per frame) built; ~8 MB in float64.
_MAX_KERNEL_ELEMS = 1 << 20


def _kernel_elems(orig: int, new: int) -> int:
    g = math.gcd(orig, new)
    o, n = orig // g, new // g
    return n * (2 * math.ceil(LOWPASS_FILTER_WIDTH * o / (min(o, n) * ROLLOFF)) + o)


def _practical_rate(orig_sr: int, new_sr: int) -> int:
    """``orig_sr``, or for an exotic rate (16001 Hz, 22254 Hz, ...) whose exact ratio to ``new_sr``
    would need a kernel of gigabytes, the nearest rate on a coarse grid (a multiple of 10, 50, ...
    Hz): the input is then resampled as if recorded at that rate, a pitch and tempo change of at
    most a fraction of a percent, which speech recognition does not notice."""
    if _kernel_elems(orig_sr, new_sr) <= _MAX_KERNEL_ELEMS:
        return orig_sr
    for step in (10, 25, 50, 100, 250, 500, 1000):
        r = max(step, int(round(orig_sr / step)) * step)
        if _kernel_elems(r, new_sr) <= _MAX_KERNEL_ELEMS:
            return r
    raise AudioError(f"cannot resample {orig_sr} Hz to {new_sr} Hz: the rates have no practical common ratio; "
                     f"{_CONVERT_HINT}")


class Resampler:
    """Stateful polyphase resampler: ``process(block)`` any number of times, then ``flush()``.

    The concatenated output equals ``resample(whole_signal, orig_sr, new_sr)``. Two equivalent
    evaluation strategies: for small reduced ratios (48k->16k, 8k->16k, ...) one ``np.correlate``
    per (input phase, output phase); otherwise a dense float32 matmul of strided frames with the
    (new, 2*width+orig) kernel matrix (BLAS), in chunks that bound temporary memory (~16 MB).
    """

    _CHUNK_ELEMS = 1 << 22

    def __init__(self, orig_sr: int, new_sr: int):
        orig_sr, new_sr = int(orig_sr), int(new_sr)
        if orig_sr <= 0 or new_sr <= 0:
            raise ValueError(f"sample rates must be positive, got {orig_sr} -> {new_sr}")
        self.orig_sr, self.new_sr = orig_sr, new_sr
        orig_sr = _practical_rate(orig_sr, new_sr)
        self.approx_sr = orig_sr  # the rate the input is resampled as (== orig_sr unless exotic)
        g = math.gcd(orig_sr, new_sr)
        self._orig, self._new = orig_sr // g, new_sr // g
        self._identity = orig_sr == new_sr
        if not self._identity:
            self._taps, self._full_t, self._width, self._K = _strategy(self._orig, self._new)
            self._buf = np.zeros(self._width, dtype=np.float32)  # left zero padding
        self._n_in = 0
        self._n_out = 0
        self._done = False

    def _run(self) -> np.ndarray:
        orig, new, K, buf = self._orig, self._new, self._K, self._buf
        n_frames = (len(buf) - K) // orig + 1 if len(buf) >= K else 0
        if n_frames <= 0:
            return np.zeros(0, dtype=np.float32)
        out = np.zeros((n_frames, new), dtype=np.float32)
        if self._taps is not None:
            for p, j, a, g in self._taps:
                xp = buf[p::orig]
                out[:, j] += np.correlate(xp[a : a + n_frames + len(g) - 1], g, "valid")
        else:
            frames = np.lib.stride_tricks.sliding_window_view(buf, K)
            per = max(1, self._CHUNK_ELEMS // K)
            for k0 in range(0, n_frames, per):
                k1 = min(n_frames, k0 + per)
                np.matmul(frames[k0 * orig : k1 * orig : orig], self._full_t, out=out[k0:k1])
        self._buf = buf[n_frames * orig :].copy()
        return out.reshape(-1)

    def process(self, x: np.ndarray) -> np.ndarray:
        if self._done:
            raise RuntimeError("Resampler.process() after flush()")
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        self._n_in += len(x)
        if self._identity:
            self._n_out += len(x)
            return x
        self._buf = np.concatenate([self._buf, x])
        y = self._run()
        self._n_out += len(y)
        return y

    def flush(self) -> np.ndarray:
        if self._done:
            return np.zeros(0, dtype=np.float32)
        self._done = True
        if self._identity:
            return np.zeros(0, dtype=np.float32)
        target = -(-self._new * self._n_in // self._orig)  # ceil(new * n_in / orig)
        self._buf = np.concatenate([self._buf, np.zeros(self._width + self._orig, dtype=np.float32)])
        y = self._run()
        y = y[: max(0, target - self._n_out)]
        self._n_out += len(y)
        return y


def resample(x: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Resample a 1-D signal (float32 out); identical to torchaudio's Kaiser sinc resample.

    A 2-D array is treated as (channels, time) like torchaudio and resampled per row.
    """
    x = np.asarray(x)
    if int(orig_sr) == int(new_sr):
        return x.astype(np.float32, copy=False)
    if x.ndim == 2:
        return np.stack([resample(row, orig_sr, new_sr) for row in x])
    if x.ndim != 1:
        raise ValueError(f"resample expects a 1-D (or channels x time) array, got shape {x.shape}")
    r = Resampler(orig_sr, new_sr)
    a = r.process(x)
    b = r.flush()
    return np.concatenate([a, b]) if len(b) else a


# --------------------------------------------------------------------------------------------
# Reading


def _check_path(path: Path) -> None:
    if path.is_dir():
        raise AudioError(f"{path} is a directory, not an audio file; give the path of a .wav/.flac/.ogg/.mp3 file")
    if not path.exists():
        raise AudioError(
            f"audio file not found: {path} (absolute: {path.absolute()}); check the path "
            "(relative paths are resolved from the current directory)"
        )


#: WAV data-chunk sizes that streaming writers put in the header when the length is unknown.
_WAV_UNKNOWN_SIZE = 0x7FFF0000


def _check_wav_complete(path: Path) -> None:
    """Refuse a WAV whose data chunk is shorter than its header says (an interrupted copy or
    download): libsndfile would silently return the part that is there."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(12)
            if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return
                declared = struct.unpack("<I", chunk[4:])[0]
                if chunk[:4] == b"data":
                    break
                fh.seek(declared + (declared & 1), os.SEEK_CUR)
            available = size - fh.tell()
    except OSError:
        return
    if 0 < declared < _WAV_UNKNOWN_SIZE and declared > available:
        raise AudioError(
            f"audio file {path} is truncated: its header announces {declared} bytes of samples but only "
            f"{available} are there (an interrupted copy or download?); copy or create it again"
        )


#: Bytes an MP3 may lack against its Xing/Info header and still count as complete: LAME counts a
#: trailing ID3v1 tag (128 bytes) in the stream size, and a tag editor may remove it later.
_MP3_TAG_SLACK = 128


def _mp3_stream_bytes(path: Path) -> tuple[int, int] | None:
    """``(declared, available)`` bytes of an MP3 stream: the size its Xing/Info header (LAME and
    libsndfile write one) announces, counted from that header's frame on (a leading ID3v2 tag is
    not counted; mpg123 reads it the same way), and the bytes the file holds from there; None when
    the file has no such header or it gives no size."""
    with open(path, "rb") as fh:
        head = fh.read(10)
        start = 0
        if len(head) == 10 and head[:3] == b"ID3":  # ID3v2 tag: synchsafe size, optional footer
            start = 10 + (((head[6] & 0x7F) << 21) | ((head[7] & 0x7F) << 14) | ((head[8] & 0x7F) << 7)
                          | (head[9] & 0x7F)) + (10 if head[5] & 0x10 else 0)
        fh.seek(start)
        frame = fh.read(64)
    if len(frame) < 4 or frame[0] != 0xFF or frame[1] & 0xE0 != 0xE0:
        return None
    mpeg1 = (frame[1] >> 3) & 3 == 3
    mono = (frame[3] >> 6) & 3 == 3
    off = 4 + (0 if frame[1] & 1 else 2) + ((17 if mono else 32) if mpeg1 else (9 if mono else 17))
    if frame[off:off + 4] not in (b"Xing", b"Info") or len(frame) < off + 16:
        return None
    flags = struct.unpack(">I", frame[off + 4:off + 8])[0]
    if not flags & 2:  # no stream size
        return None
    at = off + 8 + (4 if flags & 1 else 0)
    declared = struct.unpack(">I", frame[at:at + 4])[0]
    return declared, path.stat().st_size - start


def _check_mp3_complete(path: Path, announced_seconds: float) -> None:
    """Refuse an MP3 whose stream is shorter than its Xing/Info header says (an interrupted copy or
    download), the rule :func:`_check_wav_complete` applies to WAVs: libsndfile reports the
    header's duration but decodes only the part that is there, so the rest of the recording would
    be missing from a transcript that looks complete. Refused rather than warned about for the same
    reason as a truncated WAV: a warning scrolls by in a long decode and the hyp file still claims
    to be the transcript of the whole file."""
    try:
        sizes = _mp3_stream_bytes(path)
    except OSError:
        return
    if sizes is None:
        return
    declared, available = sizes
    if declared - available > _MP3_TAG_SLACK:
        missing = announced_seconds * (declared - available) / declared  # exact for CBR, close for VBR
        raise AudioError(
            f"audio file {path} is truncated: its MP3 header announces {declared} bytes "
            f"({announced_seconds:.2f} s) but only {available} are there, about {missing:.2f} s of the "
            "recording missing (an interrupted copy or download?); copy or create it again"
        )


def _open(path: Path) -> sf.SoundFile:
    _check_path(path)
    try:
        if path.stat().st_size == 0:
            raise _empty_error(path, " (the file is 0 bytes long)")
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(
            f"cannot read audio file {path}: {str(e).rstrip('.')}. It is corrupt, truncated or not in a format libsndfile "
            f"reads (wav, flac, ogg, mp3); {_CONVERT_HINT}"
        ) from e
    except OSError as e:
        raise AudioError(f"cannot open audio file {path}: {e}; check that it exists and is readable") from e
    try:
        if f.format in ("WAV", "WAVEX"):
            _check_wav_complete(path)
        elif f.format == "MP3":
            _check_mp3_complete(path, f.frames / f.samplerate if f.samplerate else 0.0)
    except AudioError:
        f.close()
        raise
    return f


def _mono(data: np.ndarray) -> np.ndarray:
    if data.ndim == 2:
        data = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(data, dtype=np.float32)


def _check_finite(x: np.ndarray, path: Path, first_index: int = 0) -> None:
    finite = np.isfinite(x)
    if not finite.all():
        i = int(np.argmin(finite))
        kind = "NaN" if np.isnan(x[i]) else "Inf"
        raise AudioError(
            f"audio file {path} contains non-finite samples ({kind} at sample {first_index + i}); "
            "regenerate the file (a floating-point WAV written from a diverged signal?) or remove it from the data"
        )


def _empty_error(path: Path, what: str = "") -> AudioError:
    return AudioError(
        f"audio file {path} has no samples{what}; re-create it (a header-only or empty file?) "
        "or remove it from the data dir"
    )


def _read_native(path: Path, offset: float = 0.0, duration: float | None = None) -> tuple[np.ndarray, int]:
    with _open(path) as f:
        sr = f.samplerate
        n = f.frames
        start = int(round(max(0.0, offset) * sr))
        if n == 0:
            raise _empty_error(path, " (0 frames)")
        if start >= n and (offset > 0):
            raise AudioError(
                f"offset {offset:.3f} s is past the end of {path} ({n / sr:.3f} s); "
                "check the start time in the segments file"
            )
        frames = -1 if duration is None or duration < 0 else int(round(duration * sr))
        try:
            if start:
                f.seek(start)
            data = f.read(frames=frames, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioError(f"cannot decode audio file {path}: {e}; it is probably corrupt; {_CONVERT_HINT}") from e
    x = _mono(data)
    if len(x) == 0:
        raise _empty_error(path, f" in the requested range (offset {offset} s, duration {duration} s)")
    _check_finite(x, path, start)
    return x, sr


def read_audio(
    path: str | os.PathLike,
    sample_rate: int | None = SAMPLE_RATE,
    *,
    offset: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Read ``path`` as float32 mono at ``sample_rate`` (None: the file's own rate).

    ``offset``/``duration`` (seconds, at the file's rate) read a segment; ``duration=None`` or a
    negative value reads to the end. Raises AudioError for a missing, unreadable, empty or
    non-finite file.
    """
    path = Path(path)
    x, sr = _read_native(path, offset, duration)
    if sample_rate is not None and sr != sample_rate:
        x = resample(x, sr, sample_rate)
    return x


def read_audio_with_rate(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read ``path`` as float32 mono at its native rate; returns ``(samples, sample_rate)``."""
    return _read_native(Path(path))


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Header information (no decoding). Raises AudioError like :func:`read_audio`."""
    path = Path(path)
    with _open(path) as f:
        sr, n, ch = int(f.samplerate), int(f.frames), int(f.channels)
    return AudioInfo(sample_rate=sr, num_frames=n, channels=ch, duration=n / sr if sr else 0.0)


def iter_audio_blocks(
    path: str | os.PathLike,
    sample_rate: int | None = SAMPLE_RATE,
    block_seconds: float = 30.0,
) -> Iterator[np.ndarray]:
    """Yield float32 mono blocks of ``path`` at ``sample_rate`` with bounded memory.

    Blocks hold about ``block_seconds`` of audio (the last may be shorter); their concatenation
    equals ``read_audio(path, sample_rate)``. Non-finite samples raise AudioError when reached.
    """
    path = Path(path)
    with _open(path) as f:
        sr = f.samplerate
        if f.frames == 0:
            raise _empty_error(path, " (0 frames)")
        block = max(1, int(round(block_seconds * sr)))
        rs = Resampler(sr, sample_rate if sample_rate is not None else sr)
        pos = 0
        while True:
            try:
                data = f.read(frames=block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise AudioError(f"cannot decode audio file {path} after {pos / sr:.1f} s: {e}; {_CONVERT_HINT}") from e
            if len(data) == 0:
                break
            x = _mono(data)
            _check_finite(x, path, pos)
            pos += len(x)
            y = rs.process(x)
            if len(y):
                yield y
        if pos == 0:
            raise _empty_error(path)
        y = rs.flush()
        if len(y):
            yield y


MAX_ARRAY_CHANNELS = 16  # a 2-D array with more columns than this is read as (channels, samples)


def downmix(x) -> np.ndarray:
    """float32 samples, a 2-D array averaged over its channels: (samples, channels), or
    (channels, samples) when it has more than 16 columns. The one mix-down rule for arrays a caller
    hands over (whole signals and stream chunks alike)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1 if x.shape[1] <= MAX_ARRAY_CHANNELS else 0, dtype=np.float32)
    return x


def array_to_mono(audio, sample_rate: int | None) -> np.ndarray:
    """A caller's samples as float32 mono: 1-D (samples), or 2-D (samples, channels) averaged over
    the channels (an array with more than 16 columns is read as (channels, samples)).
    ``sample_rate`` must be given (a bare array says nothing of its rate). Raises AudioError for a
    missing rate, a wrong shape, no samples, or NaN/Inf samples."""
    if sample_rate is None:
        raise AudioError("transcribing an array needs sample_rate=: pass the rate of the samples")
    if int(sample_rate) <= 0:
        raise AudioError(f"sample_rate must be a positive number of samples per second, got {sample_rate}")
    x = downmix(audio)
    if x.ndim != 1 or x.size == 0:
        raise AudioError(f"an audio array must be 1-D (samples) or 2-D (samples, channels) and non-empty; "
                         f"got shape {np.shape(audio)}")
    finite = np.isfinite(x)
    if not finite.all():
        i = int(np.argmin(finite))
        raise AudioError(f"the audio array contains non-finite samples ({'NaN' if np.isnan(x[i]) else 'Inf'} "
                         f"at sample {i})")
    return np.ascontiguousarray(x)


# --------------------------------------------------------------------------------------------
# Writing


def write_wav(path: str | os.PathLike, x: np.ndarray, sample_rate: int) -> None:
    """Write ``x`` (float in [-1, 1], clipped; or int16) as 16-bit PCM WAV, atomically.

    ``x`` is (time,) or (time, channels).
    """
    x = np.asarray(x)
    if x.dtype != np.int16:
        x = np.asarray(x, dtype=np.float32)
        if not np.isfinite(x).all():
            raise AudioError(f"refusing to write {path}: the signal contains NaN/Inf samples")
        x = np.clip(x, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), x, int(sample_rate), subtype="PCM_16", format="WAV")
