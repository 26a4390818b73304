"""``asr serve --model DIR``: run the transcription server (HTTP + WebSocket + browser page) with
uvicorn. Prints ``asr serve: listening on http://HOST:PORT`` once it accepts connections
(``--port 0`` takes any free port, and that line says which)."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from ..errors import ASRError
from .config import LOOPBACK, ServeConfig

API_KEY_ENV = "ASR_SERVE_API_KEY"
BLAS_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def add_arguments(p) -> None:
    d = ServeConfig(model=Path("."))
    p.add_argument("--model", default=None,
                   help="ONNX model package folder (written by `asr export`); default: $ASR_MODEL, else the "
                        "model shipped in the package (asr/pretrained)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: loopback only; 0.0.0.0 or :: for every interface)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port, printed at start)")
    p.add_argument("--workers", type=int, default=d.workers,
                   help="recognizers (and decoding threads) for HTTP uploads: uploads decoded at once")
    p.add_argument("--max-streams", type=int, default=d.max_streams,
                   help="WebSocket streams at once (one recognizer each); one more is refused with close code 1013")
    p.add_argument("--api-key", default=os.environ.get(API_KEY_ENV),
                   help=f"require this key (Authorization: Bearer KEY; ?api_key=KEY on the WebSocket); "
                        f"default ${API_KEY_ENV}")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb, help="largest upload (413 beyond)")
    p.add_argument("--max-stream-seconds", type=float, default=d.max_stream_seconds,
                   help="longest stream in audio seconds (then its finals and close code 1008)")
    p.add_argument("--queue-seconds", type=float, default=d.queue_seconds,
                   help="how long an upload waits for a free worker before 503")
    p.add_argument("--idle-seconds", type=float, default=d.idle_seconds,
                   help="close a stream that sends nothing (or reads nothing) for this long")
    p.add_argument("--int8", action="store_true", help="use the package's model.int8.onnx")
    p.add_argument("--threads", type=int, default=d.threads, help="onnxruntime threads per recognizer")
    p.add_argument("--language", default=d.language, help="language reported in verbose_json")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn's log level (info logs every request)")


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # connections made from now on wait in the backlog until uvicorn accepts them
    except OSError as e:
        sock.close()
        raise ASRError(f"cannot listen on {host}:{port}: {e.strerror or e} (another server on that port? "
                       "pick another with --port, or --port 0 for any free one)") from None
    sock.set_inheritable(True)
    return sock


def _one_blas_thread() -> None:
    """One BLAS thread per decoding thread. The server decodes on a thread per stream or upload, so
    a BLAS pool inside each call only oversubscribes the cores, and OpenBLAS's idle threads spin
    between the many small calls of live streams: a real-time stream cost 8x the CPU with them
    (3.6 against 0.44 CPU seconds per 10 s of speech, small int8 model). Takes effect only before
    numpy loads (the CLI has not loaded it yet); a value the user set wins."""
    if "numpy" not in sys.modules:
        for name in BLAS_THREAD_ENV:
            os.environ.setdefault(name, "1")


def run(args) -> int:
    _one_blas_thread()
    try:
        import python_multipart  # noqa: F401  (form uploads)
        import starlette  # noqa: F401
        import uvicorn
        import websockets  # noqa: F401
    except ImportError as e:
        raise ASRError(f"asr serve needs the serve extra ({e.name} is missing): pip install 'asr[serve]'") from None
    from .app import create_app

    from ..api import default_model_dir

    model = Path(args.model) if args.model else default_model_dir("onnx")
    cfg = ServeConfig(model=model, int8=args.int8, threads=args.threads, workers=args.workers,
                      max_streams=args.max_streams, queue_seconds=args.queue_seconds, api_key=args.api_key,
                      max_upload_mb=args.max_upload_mb, max_stream_seconds=args.max_stream_seconds,
                      idle_seconds=args.idle_seconds, language=args.language)
    app = create_app(cfg)  # loads the package: a bad one is refused before the port opens
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    if args.host not in LOOPBACK and cfg.api_key is None:
        print(f"asr serve: warning: listening on {args.host} without --api-key: anyone who reaches this "
              "machine can use the server", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"asr serve: listening on http://{shown}:{port} (model {app.state.serve.model_id}, "
          f"{cfg.workers} upload workers, {cfg.max_streams} streams); Ctrl-C stops", flush=True)
    config = uvicorn.Config(app, host=host, port=port, ws_max_size=cfg.max_message_bytes, log_level=args.log_level,
                            lifespan="off", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
