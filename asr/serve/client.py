"""Python clients of the server, as the tests and ``tools/bench/serve.py`` use them.

* :class:`ServerProcess` runs ``asr serve`` as a child process and gives its base URL once it
  listens (``--port 0``: any free port);
* :func:`stream_audio` streams an array over ``WS /v1/stream`` paced like a microphone (``speed``
  times real time; 0 sends as fast as the socket takes it) and returns every event with the wall
  time it arrived and the wall time each chunk was sent, so latencies can be read off.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np


class ServerProcess:
    """``with ServerProcess(model, "--api-key", "k") as srv: srv.url``: ``asr serve --port 0`` in a
    child process; ``kill()`` ends it at once (a crash, as a client sees it)."""

    def __init__(self, model: str | os.PathLike, *args: str, host: str = "127.0.0.1", timeout: float = 60.0,
                 env: dict | None = None):
        self.cmd = [sys.executable, "-m", "asr.cli", "serve", "--model", str(model), "--host", host, "--port", "0",
                    *args]
        self.timeout = timeout
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.url = ""
        self.output: list[str] = []
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=self.env)
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.output.append(line)
                if not ready.is_set() and "listening on " in line:
                    self.url = line.split("listening on ", 1)[1].split()[0]
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(self.timeout) or not self.url:
            self.stop()
            raise RuntimeError(f"asr serve did not start: {''.join(self.output)}")
        return self

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[4:]

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class StreamResult:
    events: list = field(default_factory=list)  # server messages (dicts), each with "arrived" (monotonic s)
    sent: list = field(default_factory=list)  # (audio seconds sent so far, monotonic s) after each chunk
    close_code: int | None = None
    close_reason: str = ""

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e.get("type") == kind]

    @property
    def text(self) -> str:
        return " ".join(e["text"] for e in self.of("final") if e["text"])

    def sent_time(self, audio_seconds: float) -> float:
        """Wall time (monotonic) at which the audio up to ``audio_seconds`` had been sent."""
        for a, t in self.sent:
            if a >= audio_seconds - 1e-9:
                return t
        return self.sent[-1][1]


def pcm_s16le(audio: np.ndarray) -> bytes:
    return (np.clip(np.asarray(audio, np.float32), -1, 1) * 32767).round().astype("<i2").tobytes()


async def stream_audio(url: str, audio: np.ndarray, sample_rate: int, *, speed: float = 1.0,
                       chunk_seconds: float = 0.1, api_key: str | None = None, fmt: str = "pcm_s16le",
                       end: bool = True, timeout: float = 120.0) -> StreamResult:
    """Stream ``audio`` (float32 mono) to ``url`` (``ws://HOST:PORT``) and collect the events until
    the server closes. Chunks of ``chunk_seconds`` go out at ``speed`` times real time."""
    import websockets

    res = StreamResult()
    uri = url.rstrip("/") + "/v1/stream" + (f"?api_key={api_key}" if api_key else "")
    step = max(1, int(round(chunk_seconds * sample_rate)))
    async with websockets.connect(uri, proxy=None, max_size=None, open_timeout=timeout) as ws:
        async def send():
            await ws.send(json.dumps({"sample_rate": sample_rate, "format": fmt}))
            t0 = time.monotonic()
            for i in range(0, len(audio), step):
                chunk = audio[i:i + step]
                data = pcm_s16le(chunk) if fmt == "pcm_s16le" else np.asarray(chunk, "<f4").tobytes()
                if speed > 0:  # wait until this chunk would have been captured
                    await asyncio.sleep(max(0.0, t0 + (i + len(chunk)) / sample_rate / speed - time.monotonic()))
                await ws.send(data)
                res.sent.append(((i + len(chunk)) / sample_rate, time.monotonic()))
            if end:
                await ws.send(json.dumps({"type": "end"}))

        async def receive():
            with contextlib.suppress(websockets.ConnectionClosed):  # the close code is read below
                async for msg in ws:
                    ev = json.loads(msg)
                    ev["arrived"] = time.monotonic()
                    res.events.append(ev)

        sender = asyncio.create_task(send())
        try:
            await asyncio.wait_for(receive(), timeout)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await sender
        res.close_code, res.close_reason = ws.close_code, ws.close_reason or ""
    return res

