"""``WS /v1/stream``: streaming recognition over a WebSocket (the protocol is in :mod:`asr.serve`).

Per connection, a reader task takes messages off the socket, checks them and queues the audio
(at most ``backlog_seconds`` of it; then reading pauses, and the socket's own buffers push back
on the client); the decoding loop takes everything queued at once and feeds it to an
:class:`asr.runtime.Stream` on the decoding threads, so a stream whose decoding falls behind
decodes larger chunks (fewer partials) instead of lagging further. The stream holds one
recognizer of the stream pool from its header to its close.
"""
from __future__ import annotations

import asyncio
import contextlib
import json

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import AudioError
from .pool import PoolBusy

FORMATS = {"pcm_s16le": 2, "f32le": 4}  # sample format -> bytes per sample
MIN_RATE, MAX_RATE = 1000, 384000
MAX_FLOAT = 4.0  # f32le samples beyond +-this are not audio in [-1, 1] (bytes of another format?)
END_MESSAGE = {"type": "end"}

# close codes (RFC 6455 section 7.4.1)
NORMAL, UNSUPPORTED, INVALID, POLICY, TRY_LATER = 1000, 1003, 1007, 1008, 1013


class StreamClosed(Exception):
    """Close the stream with ``code``, after an error event carrying ``message``."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class _Disconnected:
    pass


_END, _LIMIT, _GONE = "end", "max_stream_seconds", _Disconnected()


class Backlog:
    """Audio waiting for the decoder: ``put`` waits while ``max_samples`` are queued; ``take``
    returns everything queued (and why the input ended, once it has)."""

    def __init__(self, max_samples: int):
        self._chunks: list[np.ndarray] = []
        self._n = 0
        self._max = max(1, int(max_samples))
        self._end = None
        self._cond = asyncio.Condition()

    async def put(self, x: np.ndarray) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self._n < self._max)
            self._chunks.append(x)
            self._n += len(x)
            self._cond.notify_all()

    async def close(self, why) -> None:
        async with self._cond:
            self._end = why
            self._cond.notify_all()

    async def take(self):
        async with self._cond:
            await self._cond.wait_for(lambda: self._chunks or self._end is not None)
            x = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
            self._chunks, self._n = [], 0
            self._cond.notify_all()
            return x, self._end


def parse_header(text: str | None) -> tuple[int, str]:
    """(sample_rate, format) of the first message, or StreamClosed saying what is wrong."""
    example = '{"sample_rate": 16000, "format": "pcm_s16le"}'
    if text is None:
        raise StreamClosed(UNSUPPORTED, f"the first message must be a JSON text header such as {example}; "
                                        "got binary data")
    try:
        h = json.loads(text)
    except ValueError as e:
        raise StreamClosed(INVALID, f"the header is not JSON ({e}); send a header such as {example}") from None
    if not isinstance(h, dict):
        raise StreamClosed(INVALID, f"the header must be a JSON object such as {example}, got {text[:80]!r}")
    fmt = h.get("format", "pcm_s16le")
    if fmt not in FORMATS:
        raise StreamClosed(UNSUPPORTED, f"format {fmt!r} is not supported: use pcm_s16le (16-bit integers) or "
                                        "f32le (32-bit floats), mono, little-endian")
    sr = h.get("sample_rate")
    if isinstance(sr, bool) or not isinstance(sr, int) or not MIN_RATE <= sr <= MAX_RATE:
        raise StreamClosed(INVALID, f"sample_rate must be an integer number of Hz from {MIN_RATE} to {MAX_RATE}, "
                                    f"got {sr!r}")
    return sr, fmt


def decode_pcm(data: bytes, fmt: str) -> np.ndarray:
    """float32 samples of one binary message, or StreamClosed (1007) when it is not audio in ``fmt``."""
    width = FORMATS[fmt]
    if len(data) % width:
        raise StreamClosed(INVALID, f"a binary message of {len(data)} bytes is not a whole number of {fmt} "
                                    f"samples ({width} bytes each)")
    if fmt == "pcm_s16le":
        return np.frombuffer(data, "<i2").astype(np.float32) / np.float32(32768.0)
    x = np.frombuffer(data, "<f4").astype(np.float32)
    if not np.isfinite(x).all():
        raise StreamClosed(INVALID, "f32le audio contains NaN or Inf samples")
    if len(x) and float(np.abs(x).max()) > MAX_FLOAT:
        raise StreamClosed(INVALID, f"f32le samples must lie in [-1, 1], got {float(np.abs(x).max()):.3g}: "
                                    "send 32-bit floats, or declare pcm_s16le for 16-bit integers")
    return x


def _is_end(text: str) -> bool:
    try:
        return json.loads(text) == END_MESSAGE
    except ValueError:
        return False


def _event(ev) -> dict:
    """A partial or final as JSON; finals carry their words (word, start, end, confidence)."""
    from ..recognizer.formats import word_dict

    d = {"type": ev.kind, "text": ev.text, "start": round(ev.start, 3), "end": round(ev.end, 3),
         "audio_time": round(ev.audio_time, 3)}
    if ev.kind == "final":
        d["words"] = [word_dict(w) for w in ev.words]
    return d


class _Connection:
    def __init__(self, ws: WebSocket):
        self.ws = ws
        self.state = ws.app.state.serve
        self.config = self.state.config

    async def receive(self) -> dict:
        idle = self.config.idle_seconds
        try:
            msg = await asyncio.wait_for(self.ws.receive(), idle)
        except asyncio.TimeoutError:
            raise StreamClosed(POLICY, f"no message for {idle:g} s: send audio continuously (silence too) "
                                       'and {"type": "end"} at the end') from None
        if msg["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(msg.get("code", 1000))
        return msg

    async def send(self, obj: dict) -> None:
        idle = self.config.idle_seconds
        try:
            await asyncio.wait_for(self.ws.send_text(json.dumps(obj)), idle)
        except asyncio.TimeoutError:
            raise StreamClosed(POLICY, f"the client read no results for {idle:g} s") from None

    async def close(self, code: int, message: str) -> None:
        """An error event, then the close frame (its reason cut to the 123 bytes a frame holds);
        given up after ``idle_seconds`` when the client reads nothing."""
        reason = message.encode()[:123].decode(errors="ignore")

        async def send_close():
            if code != NORMAL:
                await self.ws.send_text(json.dumps({"type": "error", "code": code, "message": message}))
            await self.ws.close(code, reason)

        try:
            await asyncio.wait_for(send_close(), self.config.idle_seconds)
        except (WebSocketDisconnect, RuntimeError, OSError, asyncio.TimeoutError):  # the client left or is stuck
            pass

    async def read(self, backlog: Backlog, sample_rate: int, fmt: str) -> None:
        """Reader task: queue the client's audio until its end message, the length limit or an error."""
        limit = int(self.config.max_stream_seconds * sample_rate)
        received = 0
        try:
            while True:
                msg = await self.receive()
                data = msg.get("bytes")
                if data is None:
                    text = msg.get("text") or ""
                    if _is_end(text):
                        return await backlog.close(_END)
                    raise StreamClosed(UNSUPPORTED, 'expected binary audio or the text message {"type": "end"}, '
                                                    f"got {text[:80]!r}")
                x = decode_pcm(data, fmt)
                if received + len(x) > limit:
                    await backlog.put(x[: limit - received])
                    return await backlog.close(_LIMIT)
                received += len(x)
                if len(x):
                    await backlog.put(x)
        except StreamClosed as e:
            await backlog.close(e)
        except WebSocketDisconnect:
            await backlog.close(_GONE)

    async def run(self, rec, sample_rate: int, fmt: str) -> None:
        from ..runtime.stream import Stream

        pool = self.state.streams
        stream = await pool.run(lambda: Stream(rec, partial_interval=self.config.partial_interval))
        await self.send({"type": "ready", "sample_rate": rec.sample_rate, "format": fmt,
                         "max_seconds": self.config.max_stream_seconds, "model": self.state.model_id})
        backlog = Backlog(self.config.backlog_seconds * sample_rate)
        reader = asyncio.create_task(self.read(backlog, sample_rate, fmt))
        try:
            while True:
                audio, end = await backlog.take()
                if len(audio):
                    for ev in await pool.run(stream.accept, audio, sample_rate):
                        await self.send(_event(ev))
                if end is not None:
                    break
        except AudioError as e:  # a rate the resampler cannot take
            raise StreamClosed(INVALID, str(e)) from None
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if end is _GONE:
            return
        if isinstance(end, StreamClosed):
            raise end
        for ev in await pool.run(stream.finish):
            await self.send(_event(ev))
        await self.send({"type": "end", "text": stream.text, "audio_seconds": round(stream.audio_time, 3),
                         "reason": end})
        if end == _LIMIT:
            await self.close(POLICY, f"stream longer than {self.config.max_stream_seconds:g} s of audio "
                                     "(asr serve --max-stream-seconds)")
        else:
            await self.close(NORMAL, "end of stream")


async def stream_endpoint(ws: WebSocket) -> None:
    conn = _Connection(ws)
    await ws.accept()
    try:
        if not conn.state.key_ok(ws.headers.get("authorization"), ws.query_params.get("api_key")):
            raise StreamClosed(POLICY, "missing or wrong API key: add ?api_key=KEY to the URL or send "
                                       "`Authorization: Bearer KEY`")
        sample_rate, fmt = parse_header((await conn.receive()).get("text"))
        try:
            async with conn.state.streams.acquire(0) as rec:
                await conn.run(rec, sample_rate, fmt)
        except PoolBusy:
            raise StreamClosed(TRY_LATER, f"server busy: all {conn.state.streams.size} streams are in use; "
                                          "try again later (asr serve --max-streams)") from None
    except StreamClosed as e:
        await conn.close(e.code, e.message)
    except WebSocketDisconnect:
        pass
