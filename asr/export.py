"""``asr export --model PKG --out DIR [--int8] [--opset 17] [--dev-data DIR]``: ONNX runtime package.

Writes a self-contained folder the torch-free runtime (:mod:`asr.runtime`) loads:

* ``model.onnx``: offline acoustic graph ``(feats (B,T,F) float32 CMVN-normalised, lengths (B,) int64)
  -> (log_probs (B,T',V), out_lengths (B,))`` with dynamic batch and time. Per-utterance lengths are
  honoured (the packed LSTM becomes ONNX ``LSTM`` with ``sequence_lens``), so a padded batch of
  different lengths gives each utterance exactly its unpadded result, BiLSTM included. ``T`` must be
  at least the front end's receptive field (7 frames for x4); the runtime pads shorter inputs with
  zeros like :meth:`AcousticModel.forward` does.
* ``stream.onnx`` (unidirectional models only): ``(feats (B,T,F), h0 (L,B,H), c0 (L,B,H)) ->
  (log_probs, hn, cn)``: the LSTM state is an explicit input/output so a chunked stream reproduces
  the whole-utterance output (see :mod:`asr.runtime.stream` for the frame buffer the conv needs).
* ``lm.onnx`` (when the package has ``lm.pt``): one LM step ``(tokens (N,) int64, h (L,N,H),
  c (L,N,H)) -> (log_probs (N,V), h, c)``.
* ``--int8``: ``model.int8.onnx`` (+ ``stream.int8.onnx``), onnxruntime dynamic quantisation
  (LSTM -> DynamicQuantizeLSTM, MatMul -> MatMulInteger), with size, speed and agreement recorded.
* ``tokens.txt``, ``features.yaml``, ``cmvn.npz``, ``decode.yaml`` copied from the package, the
  feature matrices (``feat_window.npy``, ``feat_mel.npy``, ``feat_dct.npy``) the numpy front end
  uses, ``runtime.json`` (feature/decode/model settings as JSON so the runtime needs no YAML
  parser) and ``package.json`` (format_version, kind "onnx", sha256 of every file).
* ``export_report.json``: ``onnx.checker`` result and the parity check against PyTorch at several
  lengths (7, 50, 333, 1000 frames) and batch sizes (1, 3 with different lengths): max abs
  difference of the log-probs over valid frames and greedy-output agreement; the same for the
  streaming graph fed in chunks; int8 size/speed/agreement; with ``--dev-data`` the WER of fp32
  and int8 on that data dir computed by the runtime.

The input package is checked first as ``transcribe`` checks it (:func:`asr.package.check_package`:
format version, every file's hash; then :func:`asr.package.load_torch_model`, the strict loader of
``model.pt``). The folder is written as ``.<name>.tmp-<pid>`` next to ``DIR`` and renamed onto it
only when every step has succeeded, int8 and the parity checks included (a graph whose greedy output
differs from PyTorch's stops the export) (:func:`asr.atomic.atomic_dir`): a killed or failed export
leaves the previous package byte for byte, or none, never a mix of old and new files.

The exporter is the TorchScript one (``dynamo=False``, opset 17): the dynamo exporter fixes the
LSTM time axis to the example's length (see the platform notes).
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_dir, atomic_write_json
from .audio import SAMPLE_RATE
from .errors import ModelPackageError
from .package import check_package, load_torch_model, open_onnx_session, write_manifest
from .recognizer.spec import RUNTIME_FORMAT_VERSION

EXPORT_FORMAT_VERSION = RUNTIME_FORMAT_VERSION  # the ONNX package format: package.json, runtime.json, report
PARITY_LENGTHS = (7, 50, 333, 1000)
PARITY_BATCHES = (1, 3)


def _torch():
    import torch

    return torch


# ---------------------------------------------------------------------------------------------
# graphs


def _graph_modules():
    torch = _torch()
    nn = torch.nn

    class OfflineGraph(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, feats, lengths):
            return self.model(feats, lengths)

    class StreamGraph(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, feats, h0, c0):
            log_probs, (h, c) = self.model.forward_unpacked(feats, (h0, c0))
            return log_probs, h, c

    return OfflineGraph, StreamGraph


def _quiet_export(*args, **kwargs) -> None:
    torch = _torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(*args, dynamo=False, **kwargs)


def export_offline(model, path: str | os.PathLike, opset: int = 17) -> None:
    torch = _torch()
    OfflineGraph, _ = _graph_modules()
    g = OfflineGraph(model).eval()  # a fresh wrapper is in training mode: dropout would be exported
    t = max(50, model.min_input_frames())
    feats = torch.randn(2, t, model.input_dim)
    lengths = torch.tensor([t, t - 10], dtype=torch.long)
    _quiet_export(
        g, (feats, lengths), str(path), opset_version=opset,
        input_names=["feats", "lengths"], output_names=["log_probs", "out_lengths"],
        dynamic_axes={"feats": {0: "batch", 1: "time"}, "lengths": {0: "batch"},
                      "log_probs": {0: "batch", 1: "out_time"}, "out_lengths": {0: "batch"}},
    )


def lstm_state_shape(model, batch: int) -> tuple[int, int, int]:
    return (model.cfg.layers * (2 if model.cfg.bidirectional else 1), batch, model.cfg.hidden)


def export_stream(model, path: str | os.PathLike, opset: int = 17) -> None:
    torch = _torch()
    _, StreamGraph = _graph_modules()
    if model.cfg.bidirectional:
        raise ValueError("a streaming graph needs a unidirectional model")
    g = StreamGraph(model).eval()
    t = max(23, model.min_input_frames())
    feats = torch.randn(2, t, model.input_dim)
    h0 = torch.zeros(lstm_state_shape(model, 2))
    _quiet_export(
        g, (feats, h0, h0.clone()), str(path), opset_version=opset,
        input_names=["feats", "h0", "c0"], output_names=["log_probs", "hn", "cn"],
        dynamic_axes={"feats": {0: "batch", 1: "time"}, "h0": {1: "batch"}, "c0": {1: "batch"},
                      "log_probs": {0: "batch", 1: "out_time"}, "hn": {1: "batch"}, "cn": {1: "batch"}},
    )


def export_lm(lm, path: str | os.PathLike, opset: int = 17) -> dict:
    """Export one step of an LSTM LM: (tokens (N,), h, c) -> (log_probs (N,V), h, c).

    Uses ``lm.step(tokens, (h, c))`` when the LM has it, else ``lm(tokens[:, None], (h, c))``
    returning (logits or log-probs (N,1,V), (h, c)).
    """
    torch = _torch()
    nn = torch.nn

    class LMStep(nn.Module):
        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, tokens, h, c):
            if hasattr(self.lm, "step"):
                out, (h2, c2) = self.lm.step(tokens, (h, c))
            else:
                out, (h2, c2) = self.lm(tokens[:, None], (h, c))
            if out.dim() == 3:
                out = out[:, -1]
            return torch.log_softmax(out.float(), dim=-1), h2, c2

    lstm = next(m for m in lm.modules() if isinstance(m, nn.LSTM))
    layers, hidden = lstm.num_layers, lstm.hidden_size
    g = LMStep(lm).eval()
    tokens = torch.tensor([1, 2], dtype=torch.long)
    h = torch.zeros(layers, 2, hidden)
    _quiet_export(
        g, (tokens, h, h.clone()), str(path), opset_version=opset,
        input_names=["tokens", "h", "c"], output_names=["log_probs", "h_out", "c_out"],
        dynamic_axes={"tokens": {0: "n"}, "h": {1: "n"}, "c": {1: "n"},
                      "log_probs": {0: "n"}, "h_out": {1: "n"}, "c_out": {1: "n"}},
    )
    return {"layers": layers, "hidden": hidden}


# ---------------------------------------------------------------------------------------------
# checks


def _greedy(ids: np.ndarray) -> list[int]:
    from .decode.greedy import collapse

    return collapse(ids, 0)


def parity_offline(model, onnx_path, lengths=PARITY_LENGTHS, batches=PARITY_BATCHES, seed: int = 0) -> dict:
    """Compare the ONNX offline graph with ``model.forward`` on random features."""
    torch = _torch()
    sess = open_onnx_session(onnx_path)
    rng = np.random.default_rng(seed)
    cases = []
    # the graph needs T >= the front end's receptive field (the runtime pads shorter inputs)
    for T in sorted({max(int(T), model.min_input_frames()) for T in lengths}):
        for B in batches:
            lens = [T] + [max(model.min_input_frames(), int(T * f)) for f in (0.8, 0.55)][: B - 1]
            x = rng.standard_normal((B, T, model.input_dim)).astype(np.float32)
            for i, n in enumerate(lens):
                x[i, n:] = 0.0
            ln = np.asarray(lens, dtype=np.int64)
            with torch.no_grad():
                ref, ref_len = model(torch.from_numpy(x), torch.from_numpy(ln))
            ref, ref_len = ref.numpy(), ref_len.numpy()
            out, out_len = sess.run(None, {"feats": x, "lengths": ln})
            diff, agree = 0.0, True
            for i in range(B):
                n = int(ref_len[i])
                diff = max(diff, float(np.abs(out[i, :n] - ref[i, :n]).max()))
                agree &= _greedy(out[i, :n].argmax(-1)) == _greedy(ref[i, :n].argmax(-1))
            cases.append({"frames": T, "batch": B, "lengths": lens, "max_abs_diff": diff,
                          "out_lengths_equal": bool((out_len == ref_len).all()), "greedy_agree": bool(agree)})
    return {"cases": cases, "max_abs_diff": max(c["max_abs_diff"] for c in cases),
            "greedy_agree": all(c["greedy_agree"] and c["out_lengths_equal"] for c in cases)}


def parity_stream(model, onnx_path, total_frames: int = 333, seed: int = 0) -> dict:
    """Feed the streaming graph in random chunks with a frame buffer; compare to the whole utterance."""
    torch = _torch()
    from .runtime.stream import ConvFrameBuffer

    sess = open_onnx_session(onnx_path)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((total_frames, model.input_dim)).astype(np.float32)
    with torch.no_grad():
        ref, _ = model(torch.from_numpy(x[None]), torch.tensor([total_frames]))
    ref = ref[0].numpy()
    buf = ConvFrameBuffer(model.min_input_frames(), model.subsampling)
    h = np.zeros(lstm_state_shape(model, 1), np.float32)
    c = h.copy()
    outs = []
    pos = 0
    while pos < total_frames:
        n = int(rng.integers(1, 40))
        buf.push(x[pos:pos + n])
        pos += n
        block = buf.pop_ready()
        if block is not None:
            lp, h, c = sess.run(None, {"feats": block[None], "h0": h, "c0": c})
            outs.append(lp[0])
    out = np.concatenate(outs)
    n = min(len(out), len(ref))
    return {"frames": total_frames, "out_frames": len(out), "ref_frames": len(ref),
            "max_abs_diff": float(np.abs(out[:n] - ref[:n]).max()),
            "greedy_agree": len(out) == len(ref) and _greedy(out.argmax(-1)) == _greedy(ref.argmax(-1))}


INT8_OPS = ("LSTM", "MatMul", "Gemm")


def quantize_int8(src, dst) -> None:
    """Dynamic int8 quantisation of the LSTMs (DynamicQuantizeLSTM) and matrix products.

    Conv stays float: onnxruntime's ConvInteger is ~4x slower than its float Conv on one thread
    (measured on the small config: 16 ms vs 4 ms per 10 s of audio), and the front end is a tiny
    share of the weights.
    """
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" notice
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=list(INT8_OPS))
    finally:
        logging.getLogger().setLevel(level)


def time_session(path, input_dim: int, frames: int = 1000, threads: int = 1, repeats: int = 3) -> float:
    """Median seconds for one forward over ``frames`` feature frames (batch 1)."""
    sess = open_onnx_session(path, threads)
    x = np.random.default_rng(0).standard_normal((1, frames, input_dim)).astype(np.float32)
    feed = {"feats": x, "lengths": np.array([frames], np.int64)}
    sess.run(None, feed)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, feed)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def compare_int8(model, fp32_path, int8_path, seed: int = 1) -> dict:
    """Greedy agreement and max diff of the int8 graph vs the fp32 graph on random features."""
    s32, s8 = open_onnx_session(fp32_path), open_onnx_session(int8_path)
    rng = np.random.default_rng(seed)
    same_frames = total = 0
    same_utts = 0
    diffs = []
    lengths = (50, 333, 1000)
    for T in lengths:
        x = rng.standard_normal((1, T, model.input_dim)).astype(np.float32)
        feed = {"feats": x, "lengths": np.array([T], np.int64)}
        a = s32.run(None, feed)[0][0]
        b = s8.run(None, feed)[0][0]
        diffs.append(float(np.abs(a - b).max()))
        same_frames += int((a.argmax(-1) == b.argmax(-1)).sum())
        total += a.shape[0]
        same_utts += int(_greedy(a.argmax(-1)) == _greedy(b.argmax(-1)))
    return {"argmax_frame_agreement": same_frames / total, "greedy_utt_agreement": same_utts / len(lengths),
            "max_abs_diff": max(diffs), "note": "random features; see dev_wer for real speech"}


# ---------------------------------------------------------------------------------------------
# package


def _write_feature_matrices(cfg, out: Path) -> list[str]:
    """Save the analysis window / mel filterbank / DCT the numpy front end multiplies with."""
    from .features import feature_matrices

    written = []
    for name, arr in dict(feature_matrices(cfg)).items():
        if arr is None:
            continue
        fn = f"feat_{name}.npy"
        np.save(out / fn, np.asarray(arr))
        written.append(fn)
    return written


def export_package(
    pkg_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    int8: bool = False,
    opset: int = 17,
    dev_data: str | os.PathLike | None = None,
    check_lengths=PARITY_LENGTHS,
    log=print,
) -> dict:
    """Export ``pkg_dir`` into the runtime package ``out_dir``; returns the export report."""
    pkg, out = Path(pkg_dir), Path(out_dir)
    if pkg.resolve() == out.resolve():
        raise ModelPackageError("--out must differ from --model")
    # The input is checked as transcribe checks it (format version, every file's hash), then model.pt
    # is loaded strictly, before anything is written.
    info = check_package(pkg)
    if not info.has_torch_model:
        raise ModelPackageError(f"{pkg} has no model.pt (an ONNX package?): export needs a PyTorch package "
                                "written by `asr package`")
    model, _ = load_torch_model(info)
    # Everything is written into a temporary folder that replaces OUT whole only when every step and
    # check has passed: a killed or failed export leaves the previous package (or none), never a
    # folder of mixed files.
    with atomic_dir(out) as work:
        report: dict[str, Any] = {"format_version": EXPORT_FORMAT_VERSION, "opset": opset, "source": str(pkg)}
        import onnx
        import onnxruntime

        report["versions"] = {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                              "torch": _torch().__version__}

        # acoustic model, offline graph
        t0 = time.time()
        export_offline(model, work / "model.onnx", opset)
        onnx.checker.check_model(str(work / "model.onnx"))
        report["model"] = {"checker": "ok", "export_seconds": round(time.time() - t0, 2),
                           "parameters": model.num_parameters(),
                           "bytes": (work / "model.onnx").stat().st_size}
        log(f"exported {out / 'model.onnx'} ({report['model']['bytes'] / 1e6:.1f} MB)")
        report["parity"] = parity_offline(model, work / "model.onnx", lengths=check_lengths)
        log(f"parity vs PyTorch: max abs diff {report['parity']['max_abs_diff']:.2e}, "
            f"greedy agree {report['parity']['greedy_agree']}")
        _require_parity("model.onnx", report["parity"], out)

        streaming = not model.cfg.bidirectional
        if streaming:
            export_stream(model, work / "stream.onnx", opset)
            onnx.checker.check_model(str(work / "stream.onnx"))
            report["stream"] = {"checker": "ok", "parity_chunked": parity_stream(model, work / "stream.onnx")}
            log(f"streaming graph: chunked vs whole max abs diff "
                f"{report['stream']['parity_chunked']['max_abs_diff']:.2e}")
            _require_parity("stream.onnx (fed in chunks)", report["stream"]["parity_chunked"], out)

        # LM
        lm_info = None
        if (pkg / "lm.pt").is_file():
            lm_info = _export_lm_from_package(pkg / "lm.pt", work / "lm.onnx", opset)
            onnx.checker.check_model(str(work / "lm.onnx"))
            report["lm"] = {"checker": "ok", **lm_info}
            log(f"exported {out / 'lm.onnx'}")

        if int8:
            quantize_int8(work / "model.onnx", work / "model.int8.onnx")
            fp32_s = time_session(work / "model.onnx", model.input_dim)
            int8_s = time_session(work / "model.int8.onnx", model.input_dim)
            report["int8"] = {
                "bytes": (work / "model.int8.onnx").stat().st_size,
                "size_ratio": (work / "model.int8.onnx").stat().st_size / (work / "model.onnx").stat().st_size,
                "seconds_1000_frames_1_thread": {"fp32": fp32_s, "int8": int8_s},
                "speedup": fp32_s / int8_s if int8_s > 0 else None,
                "agreement": compare_int8(model, work / "model.onnx", work / "model.int8.onnx"),
            }
            if streaming:
                quantize_int8(work / "stream.onnx", work / "stream.int8.onnx")
            log(f"int8: {report['int8']['size_ratio']:.2f}x size, {report['int8']['speedup']:.2f}x speed")

        # runtime files
        from .package import NGRAM_BINARY_FILE, NGRAM_FILE, package_ngram_file

        for name in ("tokens.txt", "features.yaml", "cmvn.npz", "decode.yaml", "bpe.model", NGRAM_FILE,
                     NGRAM_BINARY_FILE):
            if (pkg / name).is_file():
                shutil.copyfile(pkg / name, work / name)  # a new file's permissions, not the source's
        from . import config as config_mod
        from .decode.config import DecodeConfig
        from .features import load_feature_config
        from .recognizer.spec import LMSpec, ModelSpec, RuntimeSpec, write_runtime_spec

        feat_cfg = load_feature_config(pkg / "features.yaml")
        decode_yaml = pkg / "decode.yaml"
        runtime = RuntimeSpec(
            format_version=EXPORT_FORMAT_VERSION,
            features=feat_cfg,
            feature_matrices=_write_feature_matrices(feat_cfg, work),
            decode=config_mod.load(DecodeConfig, decode_yaml) if decode_yaml.is_file() else DecodeConfig(),
            model=ModelSpec(
                input_dim=model.input_dim, vocab_size=model.vocab_size, subsampling=model.subsampling,
                min_input_frames=model.min_input_frames(), bidirectional=model.cfg.bidirectional,
                layers=model.cfg.layers, hidden=model.cfg.hidden, streaming=streaming),
            lm=LMSpec(**lm_info) if lm_info else None,
            cmvn=(pkg / "cmvn.npz").is_file(),
            ngram=_ngram_spec(package_ngram_file(work)),
        )
        write_runtime_spec(work / "runtime.json", runtime)

        if dev_data is not None:
            report["dev_wer"] = dev_wer(work, dev_data, int8=int8, log=log)

        atomic_write_json(work / "export_report.json", report)
        write_manifest(work, {"kind": "onnx", "source_package": {k: v for k, v in info.meta.items() if k != "files"}},
                       format_version=EXPORT_FORMAT_VERSION)
    return report


def _ngram_spec(arpa: Path | None):
    """runtime.json's description of the package's n-gram LM (None without one): the header counts
    (of the ARPA text, or of the KenLM binary's header)."""
    if arpa is None:
        return None
    from .ngram.binary import binary_info, is_kenlm_binary
    from .recognizer.spec import NgramSpec

    if is_kenlm_binary(arpa):
        counts = binary_info(arpa)[0]
        return NgramSpec(file=arpa.name, order=len(counts), ngrams=sum(counts))
    counts = []
    with open(arpa, encoding="utf-8") as f:
        for line in f:
            if line.startswith("ngram "):
                counts.append(int(line.split("=")[1]))
            elif counts and line.startswith("\\"):
                break
    return NgramSpec(file=arpa.name, order=len(counts), ngrams=sum(counts))


def _require_parity(graph: str, parity: dict, out: Path) -> None:
    """Stop the export (OUT is left as it was) when the ONNX graph's greedy output differs from PyTorch's."""
    if not parity["greedy_agree"]:
        raise ModelPackageError(
            f"export to {out} stopped: {graph} does not reproduce the PyTorch model (greedy output differs on "
            f"random features; max abs log-prob difference {parity['max_abs_diff']:.2e}); {out} was left as it "
            "was. Check the onnx/onnxruntime/torch versions (a bug report with the package is welcome)")


def _export_lm_from_package(lm_pt: Path, out_path: Path, opset: int) -> dict:
    """Export the package LM as a step graph and check it against ``LSTMLM.step`` (3 steps, N=4)."""
    torch = _torch()
    from .models import lm as lm_mod

    loader = getattr(lm_mod, "load_lm", None)
    if loader is None:
        raise ModelPackageError(f"{lm_pt}: asr.models.lm has no load_lm(); cannot export the LM")
    lm = loader(lm_pt)
    if isinstance(lm, tuple):
        lm = lm[0]
    lm.eval()
    info = export_lm(lm, out_path, opset)
    sess = open_onnx_session(out_path)
    rng = np.random.default_rng(0)
    V = int(getattr(lm, "vocab_size", 0) or sess.get_outputs()[0].shape[-1])
    n = 4
    h = np.zeros((info["layers"], n, info["hidden"]), np.float32)
    c = h.copy()
    th, tc = torch.from_numpy(h), torch.from_numpy(c)
    diff = 0.0
    for _ in range(3):
        tok = rng.integers(0, V, n).astype(np.int64)
        lp, h, c = sess.run(None, {"tokens": tok, "h": h, "c": c})
        with torch.no_grad():
            ref, (th, tc) = lm.step(torch.from_numpy(tok), (th, tc))
        diff = max(diff, float(np.abs(lp - torch.log_softmax(ref.float(), -1).numpy()).max()),
                   float(np.abs(h - th.numpy()).max()))
    info["parity_max_abs_diff"] = diff
    return info


# ---------------------------------------------------------------------------------------------
# dev WER of the runtime package


def dev_wer(package_dir, data_dir, *, int8: bool = True, log=print, limit: int | None = None) -> dict:
    """WER of the runtime package (fp32 and, if present, int8) on a Kaldi data dir (wav.scp + text).

    Uses the torch-free :class:`asr.runtime.Recognizer` (greedy decoding) so the numbers are what a
    deployed model gets.
    """
    import jiwer

    from .data.datadir import read_kaldi_map
    from .runtime import Recognizer

    data = Path(data_dir)
    text = read_kaldi_map(data / "text")
    from .data.datadir import DataDir

    dd = DataDir.load(data)  # a data dir that does not load is the user's to fix: DataDirError says why
    utts = [u for u in dd.utt_ids if u in text]

    def audio(u):
        return dd.audio(u, SAMPLE_RATE)
    if limit:
        utts = utts[:limit]
    result = {"data": str(data), "utterances": len(utts)}
    for kind in (["fp32", "int8"] if int8 else ["fp32"]):
        # export calls this before it writes package.json: the files are its own, not verified
        rec = Recognizer(package_dir, threads=1, int8=(kind == "int8"), method="greedy", verify=False)
        hyps = [rec.transcribe(audio(u), sample_rate=SAMPLE_RATE) for u in utts]
        refs = [text[u] for u in utts]
        pairs = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
        o = jiwer.process_words([r for r, _ in pairs], [h if h.strip() else "" for _, h in pairs])
        result[kind] = {"wer": 100.0 * o.wer}
        log(f"dev WER {kind}: {100.0 * o.wer:.2f}%")
    if "int8" in result:
        result["int8_minus_fp32"] = result["int8"]["wer"] - result["fp32"]["wer"]
    return result


# ---------------------------------------------------------------------------------------------
# CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model package folder (from `asr package`)")
    p.add_argument("--out", required=True, help="output folder: the ONNX runtime package")
    p.add_argument("--int8", action="store_true", help="also write a dynamic-quantised int8 model")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--dev-data", default=None, help="data dir: report fp32 (and int8) WER with the runtime")


def run(args: argparse.Namespace) -> int:
    export_package(args.model, args.out, int8=args.int8, opset=args.opset, dev_data=args.dev_data)
    print(f"wrote {args.out} (report: {Path(args.out) / 'export_report.json'})")
    return 0
