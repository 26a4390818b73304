"""The ASGI application (Starlette): HTTP routes, the API key, the upload limit, error responses.

Every error is JSON in the shape OpenAI clients read, ``{"error": {"message", "type", "code"}}``,
with the status: 400 bad audio (the toolkit's :class:`~asr.errors.AudioError`, naming the upload)
or a malformed form, 401 a missing or wrong API key, 404/405 an unknown route or method, 413 a
body over ``max_upload_mb``, 415 a Content-Type that is not an upload, 503 every upload
recognizer busy for ``queue_seconds`` (with ``Retry-After``).
"""
from __future__ import annotations

import hmac
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from ..errors import AudioError
from .config import ServeConfig
from .formats import RESPONSE_FORMATS, Transcript, srt, transcript_json, verbose_json, vtt
from .pool import PoolBusy, RecognizerPool

STATIC = Path(__file__).resolve().parent / "static"
#: Content types taken as a raw audio body by POST /v1/transcribe (besides multipart/form-data).
RAW_AUDIO_TYPES = ("application/octet-stream", "video/ogg", "video/webm")


class BodyTooLarge(Exception):
    pass


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status, headers=headers)


class UploadLimit:
    """ASGI middleware: 413 for an HTTP body over ``max_bytes``, announced (Content-Length) or
    counted as it arrives (chunked)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    def _too_large(self, size: str) -> JSONResponse:
        mib = self.max_bytes / (1 << 20)
        return error_response(413, f"the request body is {size}; this server takes at most {mib:g} MiB "
                                   "(asr serve --max-upload-mb)")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await error_response(400, f"Content-Length {length.decode(errors='replace')!r} is not a "
                                                 "number")(scope, receive, send)
            if int(length) > self.max_bytes:
                return await self._too_large(f"{int(length) / (1 << 20):.1f} MiB")(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
            return msg

        await self.app(scope, counted, send)


class ServeState:
    """What the routes share: the settings, the two recognizer pools and the model's description."""

    def __init__(self, config: ServeConfig, recognizer=None):
        from ..package import check_package
        from ..recognizer import Recognizer

        self.config = config

        def load():
            return Recognizer(config.model, backend="onnx", int8=config.int8, threads=config.threads)

        first = recognizer if recognizer is not None else load()
        self.executor = ThreadPoolExecutor(config.workers + config.max_streams, thread_name_prefix="asr-decode")
        self.uploads = RecognizerPool("upload", load, config.workers, self.executor, initial=first)
        self.streams = RecognizerPool("stream", load, config.max_streams, self.executor)
        self.model_id = Path(config.model).resolve().name + ("-int8" if config.int8 else "")
        meta = check_package(config.model, verify_hashes=False).meta
        info = first.info
        self.model = {
            "id": self.model_id, "object": "model", "owned_by": "asr",
            "created": int(os.path.getmtime(Path(config.model) / "package.json")),
            "format_version": meta["format_version"], "kind": meta.get("kind", "onnx"), "int8": config.int8,
            "sample_rate": info.sample_rate, "vocab_size": info.vocab_size, "bidirectional": info.bidirectional,
            "layers": info.layers, "hidden": info.hidden, "subsampling": info.subsampling,
            "streaming": "state" if first.streaming else "segment",
            "features": {"kind": first.feature_config.kind, "dim": info.input_dim},
            "decode": asdict(first.decode_config), "tokenizer": type(first.tokenizer).__name__,
        }
        self.tokenizer = first.tokenizer
        self.sample_rate = info.sample_rate

    def key_ok(self, authorization: str | None, query_key: str | None = None) -> bool:
        key = self.config.api_key
        if key is None:
            return True
        given = None
        if authorization and authorization[:7].lower() == "bearer ":
            given = authorization[7:].strip()
        elif query_key is not None:
            given = query_key
        return given is not None and hmac.compare_digest(given.encode(), key.encode())


def _state(request) -> ServeState:
    return request.app.state.serve


def _require_key(request: Request) -> None:
    if not _state(request).key_ok(request.headers.get("authorization")):
        raise HTTPException(401, "missing or wrong API key: send the header `Authorization: Bearer KEY` "
                                 "with the key the server was started with (asr serve --api-key)",
                            headers={"WWW-Authenticate": "Bearer"})


def _suffix(name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    return ext if re.fullmatch(r"\.[a-z0-9]{1,8}", ext) else ""


async def _receive_upload(request: Request, raw_allowed: bool) -> tuple[Path, str, dict]:
    """The uploaded audio in a temporary file, its name, and the other form fields (or query
    parameters of a raw upload). The caller removes the file."""
    ctype = request.headers.get("content-type", "")
    main = ctype.split(";")[0].strip().lower()
    if main == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=32)
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise HTTPException(400, "the form has no file in the field 'file': send the audio as the "
                                         "multipart field 'file' (curl -F file=@speech.wav)")
            name = upload.filename or "upload"
            fd, tmp = tempfile.mkstemp(prefix="asr-serve-", suffix=_suffix(name))
            with os.fdopen(fd, "wb") as out:
                await _state(request).uploads.run(shutil.copyfileobj, upload.file, out)
            fields: dict[str, str] = {}
            for k, v in form.multi_items():  # a repeated field (timestamp_granularities[]) keeps every value
                if isinstance(v, str):
                    fields[k] = f"{fields[k]},{v}" if k in fields else v
        finally:
            await form.close()
        return Path(tmp), name, fields
    if raw_allowed and (main.startswith("audio/") or main in RAW_AUDIO_TYPES):
        name = request.query_params.get("filename", "upload")
        fd, tmp = tempfile.mkstemp(prefix="asr-serve-", suffix=_suffix(name))
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    out.write(chunk)
        except BaseException:
            os.unlink(tmp)
            raise
        return Path(tmp), name, dict(request.query_params)
    what = f"Content-Type {ctype!r}" if ctype else "a request without Content-Type"
    how = ("multipart/form-data with the audio in the field 'file', or the raw file with an audio/* "
           "Content-Type" if raw_allowed else "multipart/form-data with the audio in the field 'file'")
    raise HTTPException(415, f"{what} is not an audio upload: send {how}")


def _wants_words(fields: dict) -> bool:
    """Word times asked for: ``words=true`` (/v1/transcribe) or OpenAI's
    ``timestamp_granularities[]=word``."""
    grains = fields.get("timestamp_granularities[]", fields.get("timestamp_granularities", ""))
    return fields.get("words", "").lower() in ("1", "true", "yes") or "word" in grains.split(",")


def _decode_file(rec, path: Path, words: bool = False) -> Transcript:
    from ..audio import audio_info

    duration = audio_info(path).duration
    return Transcript.from_segments(rec.transcribe_long(path, word_timestamps=words), duration)


async def _transcribe(request: Request, raw_allowed: bool) -> tuple[Transcript, dict]:
    state = _state(request)
    path, name, fields = await _receive_upload(request, raw_allowed)
    try:
        fmt = fields.get("response_format", "json")
        if not raw_allowed and fmt not in RESPONSE_FORMATS:
            raise HTTPException(400, f"response_format {fmt!r} is not supported: use one of "
                                     f"{', '.join(RESPONSE_FORMATS)}")
        async with state.uploads.acquire(state.config.queue_seconds) as rec:
            return await state.uploads.run(_decode_file, rec, path, _wants_words(fields)), fields
    except AudioError as e:
        raise HTTPException(400, str(e).replace(repr(str(path)), repr(name)).replace(str(path), repr(name))) from None
    finally:
        path.unlink(missing_ok=True)


async def transcribe(request: Request) -> Response:
    """``POST /v1/transcribe``: multipart field ``file``, or the raw file with an audio/* type."""
    _require_key(request)
    t, _ = await _transcribe(request, raw_allowed=True)
    return JSONResponse(transcript_json(t, _state(request).model_id))


async def openai_transcriptions(request: Request) -> Response:
    """``POST /v1/audio/transcriptions``, OpenAI's request shape: multipart ``file``, ``model`` (any
    name is taken: this server has one model), ``response_format``; ``language``, ``prompt`` and
    ``temperature`` are accepted and ignored."""
    _require_key(request)
    t, fields = await _transcribe(request, raw_allowed=False)
    state = _state(request)
    fmt = fields.get("response_format", "json")
    if fmt == "text":
        return PlainTextResponse(t.text + "\n")
    if fmt == "srt":
        return PlainTextResponse(srt(t), media_type="application/x-subrip")
    if fmt == "vtt":
        return PlainTextResponse(vtt(t), media_type="text/vtt")
    if fmt == "verbose_json":
        return JSONResponse(verbose_json(t, state.tokenizer, state.config.language))
    return JSONResponse({"text": t.text})


async def models(request: Request) -> Response:
    _require_key(request)
    return JSONResponse({"object": "list", "data": [_state(request).model]})


async def healthz(request: Request) -> Response:
    """Liveness and load, without the API key (for load balancers)."""
    s = _state(request)
    return JSONResponse({"status": "ok", "model": s.model_id, "sample_rate": s.sample_rate,
                         "api_key_required": s.config.api_key is not None,
                         "streams": {"live": s.streams.in_use, "max": s.streams.size, "loaded": s.streams.made},
                         "uploads": {"busy": s.uploads.in_use, "workers": s.uploads.size, "loaded": s.uploads.made}})


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


ROUTES = "GET /, GET /healthz, GET /v1/models, POST /v1/transcribe, POST /v1/audio/transcriptions, WS /v1/stream"


async def _http_error(request: Request, exc: HTTPException) -> Response:
    message = str(exc.detail)
    if exc.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
        message = f"{message}: {request.method} {request.url.path}; this server has {ROUTES}"
    return error_response(exc.status_code, message, headers=exc.headers)


async def _too_large(request: Request, exc: BodyTooLarge) -> Response:
    mib = _state(request).config.max_upload_bytes / (1 << 20)
    return error_response(413, f"the request body is larger than {mib:g} MiB, the most this server takes "
                               "(asr serve --max-upload-mb)")


async def _busy(request: Request, exc: PoolBusy) -> Response:
    s = _state(request)
    return error_response(503, f"server busy: all {s.uploads.size} upload workers stayed in use for "
                               f"{s.config.queue_seconds:g} s; try again later", headers={"Retry-After": "1"})


def create_app(config: ServeConfig, recognizer=None) -> Starlette:
    """The application for ``config``; loads the first recognizer now (a bad package fails here)."""
    from .stream_ws import stream_endpoint

    config.check()
    state = ServeState(config, recognizer)
    routes = [
        Route("/", index, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/transcribe", transcribe, methods=["POST"]),
        Route("/v1/audio/transcriptions", openai_transcriptions, methods=["POST"]),
        WebSocketRoute("/v1/stream", stream_endpoint),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(UploadLimit, max_bytes=config.max_upload_bytes)],
                    exception_handlers={HTTPException: _http_error, BodyTooLarge: _too_large, PoolBusy: _busy})
    app.state.serve = state
    return app

