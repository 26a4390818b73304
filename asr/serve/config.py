"""The server's settings (``asr serve`` options), one frozen dataclass."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class ServeConfig:
    model: Path  # ONNX model package folder (written by `asr export`)
    int8: bool = False  # use the package's model.int8.onnx
    threads: int = 1  # onnxruntime threads per recognizer (1: each decode runs on the thread that asks)
    workers: int = 2  # recognizers (and decoding threads) for HTTP uploads: at most this many decode at once
    max_streams: int = 8  # recognizers for WebSocket streams: one per live stream; one more is refused (1013)
    queue_seconds: float = 30.0  # how long an upload waits for a free recognizer before 503
    api_key: str | None = None  # when set: required as `Authorization: Bearer KEY` (WebSocket: or ?api_key=KEY)
    max_upload_mb: float = 100.0  # largest request body in MiB; a larger one gets 413
    max_stream_seconds: float = 3600.0  # longest stream in audio seconds; then its finals, then close 1008
    idle_seconds: float = 30.0  # a stream that sends nothing for this long is closed (1008)
    backlog_seconds: float = 10.0  # audio a stream may have waiting for the decoder before its reads pause
    partial_interval: float = 0.2  # BiLSTM streams: re-decode the open segment after this much new audio (s)
    max_message_bytes: int = 1 << 20  # largest WebSocket message (uvicorn closes with 1009 beyond it)
    language: str = "en"  # language reported in verbose_json (a package does not record its language)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * (1 << 20))

    def check(self) -> None:
        """ASRError naming the setting when a value cannot work."""
        from ..errors import ConfigError

        for name in ("workers", "max_streams", "threads", "max_message_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve: {name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_upload_mb", "max_stream_seconds", "idle_seconds", "backlog_seconds", "partial_interval"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"serve: {name} must be positive, got {getattr(self, name)}")
        if self.queue_seconds < 0:
            raise ConfigError(f"serve: queue_seconds must be >= 0, got {self.queue_seconds}")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("serve: api_key is empty; give a key or leave it out")
