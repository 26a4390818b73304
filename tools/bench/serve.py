#!/usr/bin/env python3
"""Load on `asr serve`: K concurrent real-time streaming clients and M concurrent uploads.

    python tools/bench/serve.py [--model ONNX_PKG] [--int8] [--streams 8[,12,...]] [--uploads 2]
                                [--seconds 30] [--workers 2] [--json OUT.json]

The server runs as `asr serve` on loopback in its own process (the clients in this one). Without
``--model`` the small config (conf/model/small.yaml: conv x2, 3 x BiLSTM 160, 80 mels) is built with
random weights and exported with int8 (tools/bench/runtime.py's ``prepare``; speed does not depend
on the weights, and the VAD segments the audio the same way). Audio: espeak-ng sentences with
0.6 s pauses (runtime.py's ``_audio``), one file that every client uses, starting at different
offsets so that the clients do not speak in step.

Each streaming client sends ``--seconds`` of audio as pcm_s16le in 100 ms chunks at real time, then
``{"type": "end"}``. Each upload client posts 10 s of the audio to /v1/transcribe again and again
until the streams are done. Printed per run: throughput (audio seconds decoded per wall second),
final latency (from the moment the end of a segment -- the final's ``end``, which includes the
VAD's 0.2 s post-pad -- was sent to the arrival of its final; the endpointer waits for 0.35 s of
pause, so ~0.15 s of it is that wait), partial freshness (arrival - sending of the audio it
covers), end-of-stream -> end message, upload latency, errors, the server's CPU use (cores) and
memory (resident, and its peak so far), and the machine's load average. A run "keeps real time" when no client errs and the p95 final latency stays
under 1 s. Goal (issue 20): >= 8 concurrent real-time streams on a 2-core machine, int8, no errors.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools" / "bench"))

from runtime import _audio, _sub  # noqa: E402  (the same test audio and random small package as runtime.py)

REAL_TIME_P95 = 1.0  # seconds: a run keeps real time when the p95 final latency stays under this


def _pct(v, q):
    return float(np.percentile(v, q)) if len(v) else float("nan")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MiB of a process (Linux /proc)."""
    kb = {ln.split(":")[0]: int(ln.split()[1]) for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
          if ln.startswith(("VmRSS", "VmHWM"))}
    return kb["VmRSS"] / 1024, kb["VmHWM"] / 1024


def _wav_bytes(x: np.ndarray, sr: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _upload_loop(url: str, body: bytes, audio_seconds: float, stop: threading.Event, out: list) -> None:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
            conn.request("POST", "/v1/transcribe?filename=bench.wav", body=body, headers={"Content-Type": "audio/wav"})
            r = conn.getresponse()
            r.read()
            conn.close()
            out.append({"status": r.status, "latency": time.monotonic() - t0, "audio": audio_seconds})
        except OSError as e:
            out.append({"status": repr(e), "latency": time.monotonic() - t0, "audio": audio_seconds})


async def _streams(ws_url: str, audio: np.ndarray, sr: int, k: int, seconds: float):
    from asr.serve.client import stream_audio

    n = int(seconds * sr)
    clips = []
    for i in range(k):  # each client starts at another offset of the looped audio
        start = int(i * len(audio) / max(1, k)) % len(audio)
        clips.append(np.resize(np.roll(audio, -start), n))

    async def one(clip, delay):
        await asyncio.sleep(delay)  # stagger the connections over 0.5 s
        try:
            return await stream_audio(ws_url, clip, sr, speed=1.0, timeout=seconds + 120)
        except (OSError, asyncio.TimeoutError) as e:
            return e

    return await asyncio.gather(*(one(c, 0.5 * i / max(1, k)) for i, c in enumerate(clips)))


def run_load(url: str, pid: int, audio: np.ndarray, sr: int, k: int, m: int, seconds: float) -> dict:
    ws_url = "ws" + url[4:]
    body = _wav_bytes(audio[: 10 * sr], sr)
    stop = threading.Event()
    uploads: list = []
    threads = [threading.Thread(target=_upload_loop, args=(url, body, min(10.0, len(audio) / sr), stop, uploads))
               for _ in range(m)]
    load0 = os.getloadavg()[0]
    cpu0, t0 = _cpu_seconds(pid), time.monotonic()
    for t in threads:
        t.start()
    results = asyncio.run(_streams(ws_url, audio, sr, k, seconds)) if k else (time.sleep(seconds) or [])
    stop.set()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    cpu = _cpu_seconds(pid) - cpu0
    errors, final_lat, partial_lat, finish_lat = [], [], [], []
    streamed = 0.0
    for i, r in enumerate(results):
        if isinstance(r, BaseException):
            errors.append(f"stream {i}: {r!r}")
            continue
        if r.close_code != 1000 or not r.of("end"):
            errors.append(f"stream {i}: closed {r.close_code} {r.close_reason!r}")
            continue
        streamed += r.of("end")[0]["audio_seconds"]
        finals = r.of("final")
        last = finals[-1] if finals else None
        for f in finals:
            if f is last and f["audio_time"] >= seconds - 1e-6:
                continue  # closed by the end of the stream, not by a pause: counted as finish below
            final_lat.append(f["arrived"] - r.sent_time(f["end"]))
        for p in r.of("partial"):
            partial_lat.append(p["arrived"] - r.sent_time(p["audio_time"]))
        finish_lat.append(r.of("end")[0]["arrived"] - r.sent[-1][1])
    ok_up = [u for u in uploads if u["status"] == 200]
    errors += [f"upload: {u['status']}" for u in uploads if u["status"] != 200]
    uploaded = sum(u["audio"] for u in ok_up)
    return {"streams": k, "uploads": m, "seconds": seconds, "wall": wall, "errors": errors,
            "audio_seconds": streamed + uploaded, "streamed_seconds": streamed, "uploaded_seconds": uploaded,
            "throughput": (streamed + uploaded) / wall, "server_cores": cpu / wall,
            "server_rss_mb": _memory_mb(pid)[0], "server_peak_rss_mb": _memory_mb(pid)[1],
            "load_before": load0, "load_after": os.getloadavg()[0],
            "final_latency": {q: _pct(final_lat, q) for q in (50, 95, 99)} | {"max": max(final_lat, default=0.0),
                                                                           "n": len(final_lat)},
            "partial_latency": {q: _pct(partial_lat, q) for q in (50, 95)} | {"n": len(partial_lat)},
            "finish_latency": {q: _pct(finish_lat, q) for q in (50, 95)},
            "upload_latency": {q: _pct([u["latency"] for u in ok_up], q) for q in (50, 95)} | {"n": len(ok_up)},
            "real_time": not errors and (not final_lat or _pct(final_lat, 95) < REAL_TIME_P95)}


def _report(r: dict) -> str:
    fl, pl, fin, ul = r["final_latency"], r["partial_latency"], r["finish_latency"], r["upload_latency"]
    return (f"{r['streams']:>3} streams + {r['uploads']} uploads | {r['throughput']:6.1f} audio-s/s "
            f"({r['streamed_seconds']:.0f} s streamed, {r['uploaded_seconds']:.0f} s uploaded in {r['wall']:.1f} s) | "
            f"final p50/p95/max {fl[50] * 1000:4.0f}/{fl[95] * 1000:4.0f}/{fl['max'] * 1000:4.0f} ms (n={fl['n']}) | "
            f"partial p50/p95 {pl[50] * 1000:4.0f}/{pl[95] * 1000:4.0f} ms | end {fin[50] * 1000:4.0f} ms | "
            f"upload p50/p95 {ul[50]:.2f}/{ul[95]:.2f} s (n={ul['n']}) | server {r['server_cores']:.2f} cores, "
            f"{r['server_rss_mb']:.0f} MiB (peak {r['server_peak_rss_mb']:.0f}) | "
            f"load {r['load_before']:.1f}->{r['load_after']:.1f} | errors {len(r['errors'])} | "
            f"real time: {'yes' if r['real_time'] else 'NO'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="ONNX package (default: random small config, exported here)")
    ap.add_argument("--config", default=str(ROOT / "conf" / "model" / "small.yaml"))
    ap.add_argument("--int8", action=argparse.BooleanOptionalAction, default=True, help="model.int8.onnx (default on)")
    ap.add_argument("--streams", default="8", help="concurrent streaming clients; a comma list runs each in turn")
    ap.add_argument("--uploads", type=int, default=2, help="concurrent upload clients during the streams")
    ap.add_argument("--seconds", type=float, default=30.0, help="audio per stream (= the run's length)")
    ap.add_argument("--workers", type=int, default=2, help="asr serve --workers (upload recognizers)")
    ap.add_argument("--workdir", default=None, help="where the test audio and package go (reused when there)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    from asr.audio import read_audio_with_rate
    from asr.serve.client import ServerProcess

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="asr-bench-serve-"))
    workdir.mkdir(parents=True, exist_ok=True)
    audio, sr = read_audio_with_rate(_audio(60.0, workdir))
    model = args.model
    if model is None:
        model = workdir / "onnx_bilstm"
        if not (model / "package.json").is_file():
            print(f"building the random {Path(args.config).name} package (export + int8) in {workdir} ...", flush=True)
            model = _sub("prepare", str(workdir), None, args.config)["bilstm"]["onnx"]
    ks = [int(k) for k in args.streams.split(",")]
    server_args = ["--workers", str(args.workers), "--max-streams", str(max(ks)), "--idle-seconds", "60"]
    if args.int8:
        server_args.append("--int8")
    runs = []
    with ServerProcess(model, *server_args) as srv:
        print(f"asr serve {' '.join(server_args)} on {srv.url}; {os.cpu_count()} cores; model {model}", flush=True)
        for k in ks:
            r = run_load(srv.url, srv.proc.pid, audio, sr, k, args.uploads, args.seconds)
            runs.append(r)
            print(_report(r), flush=True)
            for e in r["errors"][:5]:
                print("   ", e)
    if args.json:
        Path(args.json).write_text(json.dumps({"model": str(model), "int8": args.int8, "runs": runs}, indent=2))
    return 0 if all(not r["errors"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
