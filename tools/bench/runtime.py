#!/usr/bin/env python3
"""PyTorch vs onnxruntime fp32 vs int8 on ONE CPU thread for 10 s of audio, in one run.

    python tools/bench/runtime.py [--model PKG] [--seconds 10] [--repeats 5] [--json OUT.json]

Without ``--model`` it builds the small config (conf/model/small.yaml: conv x4, 3 x BiLSTM 256)
with random weights (speed does not depend on the weights) and exports it with ``asr export --int8``.
Each backend runs in its own subprocess (torch and onnxruntime thread pools in one process
collapse on 2 cores), with 1 intra-op thread. Reported per backend: feature extraction, acoustic
model and greedy decoding times (median of ``--repeats``) and RTF = total / audio seconds.
Streaming (``--stream``, default on): the runtime Stream fed 100 ms chunks: per-chunk compute, RTF
and the latency from the end of the audio to the final text, for the BiLSTM package (VAD
endpointing) and the unidirectional variant of the same config (LSTM state streaming).
Goals (issue 5): fp32 RTF <= 0.01, int8 RTF <= 0.005.
Batch transcription (``--batch-files N``, default 24; 0 = skip): N files of mixed lengths (1-6 s,
cut from the test audio) through the ONNX fp32 package, greedy, files per second for one file at a
time (``Recognizer.transcribe`` in a loop), length-sorted batches (``asr.recognizer.batch``, what
``asr transcribe`` does) and batches in ``--nj 2`` worker processes (worker start-up included),
on the same files in one run, with a check that each gives the one-at-a-time texts.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ENV1 = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _audio(seconds: float, workdir: Path):
    """Speech-like test audio: espeak-ng sentences with pauses if available, else modulated noise."""
    import shutil

    import numpy as np

    path = workdir / "bench.wav"
    if path.is_file():
        return path
    from asr.audio import read_audio, write_wav

    sr = 16000
    parts = []
    if shutil.which("espeak-ng"):
        sents = ["the quick brown fox jumps over the lazy dog", "speech recognition on one thread",
                 "streaming results arrive while you speak", "turn on the light in the kitchen please"]
        i = 0
        while sum(len(p) for p in parts) < seconds * sr:
            raw = workdir / f"s{i}.wav"
            subprocess.run(["espeak-ng", "-w", str(raw), sents[i % len(sents)]], check=True, capture_output=True)
            parts += [read_audio(raw, sr), np.zeros(int(0.6 * sr), np.float32)]
            i += 1
    else:
        rng = np.random.default_rng(0)
        while sum(len(p) for p in parts) < seconds * sr:
            parts += [(0.1 * rng.standard_normal(int(1.5 * sr))).astype(np.float32), np.zeros(int(0.6 * sr), np.float32)]
    x = np.concatenate(parts)[: int(seconds * sr)]
    write_wav(path, x, sr)
    return path


def prepare(workdir: Path, model_pkg: str | None, config: str) -> dict:
    """(subprocess, torch) build/export the packages; returns their paths."""
    import dataclasses

    import numpy as np
    import torch
    import yaml

    from asr.export import export_package
    from asr.features import FeatureConfig
    from asr.models.acoustic import AcousticModel, AcousticModelConfig
    from asr.package import write_manifest

    workdir = Path(workdir)
    out = {}
    pkgs = {}
    if model_pkg:
        pkgs["given"] = Path(model_pkg)
    else:
        raw = yaml.safe_load(Path(config).read_text())
        fc = FeatureConfig()
        for name, bi in (("bilstm", True), ("lstm", False)):
            cfg = AcousticModelConfig(**{**raw, "bidirectional": bi})
            torch.manual_seed(0)
            m = AcousticModel(cfg, fc.dim, 29).eval()
            p = workdir / f"pkg_{name}"
            p.mkdir(parents=True, exist_ok=True)
            torch.save({"format_version": 1, "model_config": dataclasses.asdict(cfg), "input_dim": fc.dim,
                        "vocab_size": 29, "state_dict": m.state_dict()}, p / "model.pt")
            toks = ["<blank>", "|", "'"] + [chr(c) for c in range(97, 123)]
            (p / "tokens.txt").write_text("".join(f"{t} {i}\n" for i, t in enumerate(toks)))
            (p / "features.yaml").write_text(yaml.safe_dump(dataclasses.asdict(fc)))
            np.savez(p / "cmvn.npz", mean=np.full(fc.dim, -5.0, np.float32), std=np.full(fc.dim, 3.0, np.float32),
                     count=np.int64(1))
            (p / "decode.yaml").write_text("method: greedy\n")
            write_manifest(p)  # export checks the package's hashes first
            pkgs[name] = p
    for name, p in pkgs.items():
        onnx_dir = workdir / f"onnx_{name}"
        rep = export_package(p, onnx_dir, int8=True, log=lambda *a: None, check_lengths=(7, 333))
        out[name] = {"torch": str(p), "onnx": str(onnx_dir), "parity_max_abs_diff": rep["parity"]["max_abs_diff"],
                     "int8_agreement": rep["int8"]["agreement"], "params": rep["model"]["parameters"]}
    return out


def bench_torch(pkg: str, wav: str, repeats: int) -> dict:
    """The recognizer's PyTorch backend (the same code path as ``asr.load_model`` of a model.pt package)."""
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    with torch.inference_mode():
        return _bench_recognizer(pkg, wav, repeats, backend="torch")


def bench_ort(pkg: str, wav: str, repeats: int, int8: bool) -> dict:
    out = _bench_recognizer(pkg, wav, repeats, backend="onnx", int8=int8)
    assert "torch" not in sys.modules
    return out


def _bench_recognizer(pkg: str, wav: str, repeats: int, **kwargs) -> dict:
    """Feature, acoustic-model and greedy-decoding times of :class:`asr.recognizer.Recognizer` on one
    file (median of ``repeats`` after one warm-up)."""
    import time

    import numpy as np

    from asr.audio import read_audio
    from asr.recognizer import Recognizer

    rec = Recognizer(pkg, threads=1, method="greedy", **kwargs)
    x = read_audio(wav, 16000)
    ts = {"features": [], "model": [], "decode": [], "cpu": []}
    for _ in range(repeats + 1):
        c0 = time.process_time()
        t0 = time.perf_counter()
        f = rec.compute_features(x)
        t1 = time.perf_counter()
        lp = rec.emissions([f])[0]
        t2 = time.perf_counter()
        rec.decode(lp)
        t3 = time.perf_counter()
        for k, v in zip(ts, (t1 - t0, t2 - t1, t3 - t2, time.process_time() - c0)):
            ts[k].append(v)
    return {k: float(np.median(v[1:])) for k, v in ts.items()}


def bench_stream(pkg: str, wav: str, int8: bool, chunk_ms: int = 100) -> dict:
    import time

    import numpy as np

    from asr.audio import read_audio
    from asr.runtime import Recognizer, Stream

    rec = Recognizer(pkg, threads=1, int8=int8, method="greedy")
    x = read_audio(wav, 16000)
    x = np.concatenate([x, np.zeros(16000, np.float32)])  # 1 s of trailing silence
    s = Stream(rec)
    step = 16 * chunk_ms
    per_chunk, finals = [], []
    total = 0.0
    for i in range(0, len(x), step):
        t0 = time.perf_counter()
        ev = s.accept(x[i:i + step])
        dt = time.perf_counter() - t0
        per_chunk.append(dt)
        total += dt
        for e in ev:
            if e.kind == "final":
                # end of speech -> final text = audio waited for (endpoint detection) + compute.
                # VAD segments carry post_pad of silence after the last speech frame.
                speech_end = e.end - (s.seg.post_frames * s.seg.frame / 16000 if s.mode == "segment" else 0.0)
                finals.append({"speech_end": speech_end, "emitted_at_audio": e.audio_time, "compute": dt,
                               "latency": max(0.0, e.audio_time - speech_end) + dt})
    t0 = time.perf_counter()
    ev = s.finish()
    fin = time.perf_counter() - t0
    total += fin
    return {"mode": s.mode, "chunk_ms": chunk_ms, "rtf": total / (len(x) / 16000),
            "chunk_compute_ms_mean": 1000 * float(np.mean(per_chunk)),
            "chunk_compute_ms_max": 1000 * float(np.max(per_chunk)),
            "finish_ms": 1000 * fin, "finals": len(finals) + sum(e.kind == "final" for e in ev),
            "final_latency_ms_mean": 1000 * float(np.mean([f["latency"] for f in finals])) if finals else None,
            "final_latency_ms_max": 1000 * float(np.max([f["latency"] for f in finals])) if finals else None}


def bench_batch(pkg: str, wav: str, workdir: str, n_files: int, repeats: int) -> dict:
    """Files per second: one at a time, batched (each warmed up once, then the median of
    ``repeats`` alternating runs: onnxruntime's first run of a new batch shape is slow), and
    batched in 2 worker processes (one run, their start-up included); the same files."""
    import time

    import numpy as np

    from asr.audio import read_audio, write_wav
    from asr.recognizer import Recognizer
    from asr.recognizer.batch import Item, transcribe_files

    x = read_audio(wav, 16000)
    rng = np.random.default_rng(0)
    folder = Path(workdir) / "batch_files"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        n = int(rng.uniform(1.0, 6.0) * 16000)
        start = int(rng.integers(0, max(1, len(x) - n)))
        p = folder / f"f{i:03d}.wav"
        write_wav(p, x[start:start + n], 16000)
        paths.append(str(p))
    audio = sum(len(read_audio(p, 16000)) for p in paths) / 16000
    rec = Recognizer(pkg, threads=1, method="greedy")
    items = [Item(p, p) for p in paths]
    runs = {
        "one_at_a_time": lambda: [rec.transcribe(p) for p in paths],
        "batched": lambda: [r.text for r in transcribe_files(rec, items)],
        "batched_nj2": lambda: [r.text for r in transcribe_files(rec, items, nj=2, options={"method": "greedy"})],
    }
    alone = runs["one_at_a_time"]()  # warm-ups
    out = {"files": n_files, "audio_seconds": audio, "batched_same_text": runs["batched"]() == alone}
    times: dict[str, list[float]] = {"one_at_a_time": [], "batched": []}
    for _ in range(repeats):
        for name in times:
            t0 = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t0)
    out.update({f"{k}_s": float(np.median(v)) for k, v in times.items()})
    t0 = time.perf_counter()
    out["batched_nj2_same_text"] = runs["batched_nj2"]() == alone
    out["batched_nj2_s"] = time.perf_counter() - t0
    return out


def _sub(fn: str, *args) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'tools' / 'bench')!r});"
            f"import runtime as b; print('@@' + json.dumps(b.{fn}(*{args!r})))")
    env = dict(os.environ, **ENV1)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"{fn} failed:\n{r.stderr[-3000:]}")
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("@@")][-1]
    return json.loads(line[2:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="torch model package (default: random small config)")
    ap.add_argument("--config", default=str(ROOT / "conf" / "model" / "small.yaml"))
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-stream", action="store_true")
    ap.add_argument("--batch-files", type=int, default=24, help="files for the batch comparison (0 = skip)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="asr-bench-runtime-"))
    workdir.mkdir(parents=True, exist_ok=True)
    wav = str(_audio(args.seconds, workdir))
    pk = _sub("prepare", str(workdir), args.model, args.config)
    results = {"seconds": args.seconds, "threads": 1, "packages": pk, "offline": {}, "stream": {}}
    main_name = "given" if args.model else "bilstm"
    p = pk[main_name]
    rows = {"pytorch": _sub("bench_torch", p["torch"], wav, args.repeats),
            "onnx fp32": _sub("bench_ort", p["onnx"], wav, args.repeats, False),
            "onnx int8": _sub("bench_ort", p["onnx"], wav, args.repeats, True)}
    results["offline"] = rows
    print(f"\n{main_name} model ({p['params'] / 1e6:.2f} M params), {args.seconds:.0f} s of audio, 1 thread; "
          f"ONNX parity max abs diff {p['parity_max_abs_diff']:.1e}, int8 frame agreement "
          f"{p['int8_agreement']['argmax_frame_agreement']:.3f}")
    print(f"{'backend':<11} {'features':>9} {'model':>9} {'decode':>9} {'total':>9} {'RTF':>8} {'vs torch':>9} "
          f"{'CPU s':>8} {'RTF(CPU)':>9}")
    base = rows["pytorch"]["features"] + rows["pytorch"]["model"] + rows["pytorch"]["decode"]
    for name, r in rows.items():
        tot = r["features"] + r["model"] + r["decode"]
        r["total"], r["rtf"], r["rtf_cpu"] = tot, tot / args.seconds, r["cpu"] / args.seconds
        print(f"{name:<11} {1000 * r['features']:8.1f}ms {1000 * r['model']:8.1f}ms {1000 * r['decode']:8.1f}ms "
              f"{1000 * tot:8.1f}ms {tot / args.seconds:8.4f} {base / tot:8.2f}x {1000 * r['cpu']:6.1f}ms "
              f"{r['rtf_cpu']:9.4f}")
    load = os.getloadavg()[0]
    print(f"(wall-clock medians of {args.repeats}; CPU = process CPU time of the same runs, which on one thread "
          f"approximates an idle machine's wall time; load average now {load:.1f} on {os.cpu_count()} cores)")
    for label, key in (("wall", "rtf"), ("CPU", "rtf_cpu")):
        f32, i8 = rows["onnx fp32"][key], rows["onnx int8"][key]
        print(f"goals ({label}): fp32 RTF {f32:.4f} {'<=' if f32 <= 0.01 else '>'} 0.01 "
              f"({'met' if f32 <= 0.01 else 'MISSED'}), int8 RTF {i8:.4f} {'<=' if i8 <= 0.005 else '>'} 0.005 "
              f"({'met' if i8 <= 0.005 else 'MISSED'})")
    print(f"int8 vs fp32 acoustic model time: {rows['onnx fp32']['model'] / rows['onnx int8']['model']:.2f}x")
    if not args.no_stream:
        print(f"\nstreaming, 100 ms chunks, 1 thread ({args.seconds:.0f} s + 1 s silence):")
        print(f"{'package':<22} {'mode':<8} {'RTF':>7} {'chunk mean':>11} {'chunk max':>10} {'finish':>8} "
              f"{'finals':>6} {'latency mean/max':>17}")
        for name in pk:
            for int8 in (False, True):
                r = _sub("bench_stream", pk[name]["onnx"], wav, int8)
                key = f"{name} {'int8' if int8 else 'fp32'}"
                results["stream"][key] = r
                lat = (f"{r['final_latency_ms_mean']:.0f}/{r['final_latency_ms_max']:.0f} ms"
                       if r["final_latency_ms_mean"] is not None else f"{r['finish_ms']:.0f} ms (finish)")
                print(f"{key:<22} {r['mode']:<8} {r['rtf']:7.4f} {r['chunk_compute_ms_mean']:9.1f}ms "
                      f"{r['chunk_compute_ms_max']:8.1f}ms {r['finish_ms']:6.1f}ms {r['finals']:>6} {lat:>17}")
        print("latency = end of speech -> final text: endpoint wait (VAD: min_silence 0.35 s; state mode: "
              "endpoint_silence 1.0 s of CTC blanks) + compute; 'finish' = end of stream -> last final")
    if args.batch_files:
        r = _sub("bench_batch", p["onnx"], wav, str(workdir), args.batch_files, args.repeats)
        results["batch"] = r
        print(f"\nbatch transcription, ONNX fp32, greedy, {r['files']} files of 1-6 s ({r['audio_seconds']:.0f} s), "
              "1 thread per process:")
        base = r["one_at_a_time_s"]
        for label, key in (("one at a time", "one_at_a_time"), ("batched", "batched"),
                           ("batched, --nj 2", "batched_nj2")):
            same = r.get(f"{key}_same_text")
            print(f"{label:<16} {r[key + '_s']:7.2f} s {r['files'] / r[key + '_s']:7.1f} files/s "
                  f"{base / r[key + '_s']:6.2f}x" + ("" if same is None else f"  same texts: {same}"))
        print(f"(medians of {args.repeats} after a warm-up; --nj 2: one run, starting its 2 worker processes "
              f"included; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
