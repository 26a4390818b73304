"""onnxruntime sessions, decoding and the :class:`Recognizer` (no torch).

A runtime package is the folder ``asr export`` writes (model.onnx, runtime.json, tokens.txt,
cmvn.npz, feat_*.npy, optional model.int8.onnx, stream.onnx, lm.onnx).
"""
from __future__ import annotations

import inspect
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ..decode.config import DecodeConfig
from ..decode.greedy import greedy_decode
from .features import NumpyFeatures
from .tokens import Tokens
from .vad import EnergySegmenter

SAMPLE_RATE = 16000


class RuntimeError_(Exception):
    pass


def _ort():
    import onnxruntime as ort

    return ort


def make_session(path: str | os.PathLike, threads: int = 1, inter_threads: int = 1):
    """An onnxruntime CPU session with explicit intra/inter-op thread counts (0 = ORT default)."""
    ort = _ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = int(inter_threads)
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class AcousticSession:
    """The offline graph: normalised features (B,T,F) + lengths -> log-probs (B,T',V) + out lengths."""

    def __init__(self, path, threads: int = 1, min_input_frames: int = 7):
        self.sess = make_session(path, threads)
        self.min_frames = int(min_input_frames)

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        """One utterance (T, F) -> (T', V)."""
        lp, lens = self.batch([feats])
        return lp[0, : int(lens[0])]

    def batch(self, feats_list: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        lens = np.array([max(len(f), self.min_frames) for f in feats_list], np.int64)
        F = feats_list[0].shape[1]
        x = np.zeros((len(feats_list), int(lens.max()), F), np.float32)
        for i, f in enumerate(feats_list):
            x[i, : len(f)] = f  # zero frames = normalised silence, as AcousticModel.forward pads
        lp, out_lens = self.sess.run(None, {"feats": x, "lengths": lens})
        return lp, out_lens


class StreamSession:
    """The streaming graph of a unidirectional model: (feats, h0, c0) -> (log_probs, hn, cn)."""

    def __init__(self, path, threads: int = 1, layers: int = 1, hidden: int = 1):
        self.sess = make_session(path, threads)
        self.layers, self.hidden = layers, hidden

    def initial_state(self, batch: int = 1):
        z = np.zeros((self.layers, batch, self.hidden), np.float32)
        return z, z.copy()

    def __call__(self, feats: np.ndarray, state):
        lp, h, c = self.sess.run(None, {"feats": feats[None].astype(np.float32, copy=False),
                                        "h0": state[0], "c0": state[1]})
        return lp[0], (h, c)


class OnnxLMScorer:
    """LSTM-LM step graph behind the beam search's scorer interface.

    ``initial_state()`` -> (h, c) zeros; ``score_batch(states, tokens)`` runs ONE batched step over
    all hypotheses and returns (log_probs (N, V) numpy, new per-hypothesis states).
    """

    def __init__(self, path, threads: int = 1, layers: int | None = None, hidden: int | None = None):
        self.sess = make_session(path, threads)
        if layers is None or hidden is None:
            shp = self.sess.get_inputs()[1].shape  # (layers, n, hidden)
            layers, hidden = int(shp[0]), int(shp[2])
        self.layers, self.hidden = layers, hidden

    def initial_state(self):
        z = np.zeros((self.layers, self.hidden), np.float32)
        return (z, z)

    def score_batch(self, states, tokens):
        tokens = np.asarray(tokens, np.int64).reshape(-1)
        h = np.stack([s[0] for s in states], axis=1)
        c = np.stack([s[1] for s in states], axis=1)
        lp, h2, c2 = self.sess.run(None, {"tokens": tokens, "h": h, "c": c})
        new = [(h2[:, i].copy(), c2[:, i].copy()) for i in range(len(tokens))]
        return lp, new


@dataclass
class TimedSegment:
    start: float  # seconds
    end: float
    text: str
    words: list = field(default_factory=list)  # (word, start, end) from the CTC spikes


class Recognizer:
    """Torch-free speech recognizer over an exported runtime package.

    ``Recognizer(package_dir, threads=1, int8=False, decoder=None, beam=None, use_lm=None)``;
    ``decoder`` / ``beam`` / ``use_lm`` default to the package's decode.yaml (method, beam, use_lm).
    The package's format version and file hashes are checked first (``verify=False`` skips that, for
    ``asr export``'s own check of a package it is still writing).
    """

    def __init__(self, package_dir: str | os.PathLike, threads: int = 1, int8: bool = False,
                 decoder: str | None = None, beam: int | None = None, use_lm: bool | None = None,
                 hotwords: Iterable[str] | None = None, verify: bool = True):
        from ..package import check_package  # torch-free: format version and file hashes

        pkg = Path(package_dir)
        if verify:
            check_package(pkg)
        rt_path = pkg / "runtime.json"
        if not rt_path.is_file():
            from ..errors import ModelPackageError

            raise ModelPackageError(f"{pkg}: no runtime.json; this is not an ONNX runtime package "
                                    "(make one with `asr export --model PKG --out DIR`)")
        self.package_dir = pkg
        self.config = json.loads(rt_path.read_text())
        self.threads = threads
        m = self.config["model"]
        self.model_info = m
        self.tokens = Tokens.load(pkg / "tokens.txt")
        self.features = NumpyFeatures.from_package(pkg, self.config["features"])
        self.sample_rate = int(self.features.spec.sample_rate)
        self.frame_shift = self.features.spec.hop_length / self.sample_rate
        self.subsampling = int(m["subsampling"])
        self.output_frame_shift = self.frame_shift * self.subsampling
        self.cmvn_mean = self.cmvn_std = None
        if (pkg / "cmvn.npz").is_file():
            with np.load(pkg / "cmvn.npz") as z:
                self.cmvn_mean = np.asarray(z["mean"], np.float32)
                self.cmvn_std = np.asarray(z["std"], np.float32)
        model_file = pkg / ("model.int8.onnx" if int8 else "model.onnx")
        if not model_file.is_file():
            from ..errors import ModelPackageError

            raise ModelPackageError(f"{model_file} is missing" + (" (export with --int8)" if int8 else ""))
        self.int8 = int8
        self.acoustic = AcousticSession(model_file, threads, m["min_input_frames"])
        self._check_graph(model_file)
        self._stream_path = pkg / ("stream.int8.onnx" if int8 and (pkg / "stream.int8.onnx").is_file()
                                   else "stream.onnx")
        self._stream_session = None
        dec = dict(self.config.get("decode") or {})
        self.decoder = decoder or dec.get("method", "greedy")
        self.beam = int(beam or dec.get("beam", 10))
        self.alpha, self.beta = float(dec.get("alpha", 0.5)), float(dec.get("beta", 1.0))
        use_lm = dec.get("use_lm", True) if use_lm is None else use_lm
        self.decode_options = DecodeConfig(method=self.decoder, beam=self.beam, alpha=self.alpha, beta=self.beta,
                                           use_lm=bool(use_lm))
        self.hotwords = list(hotwords) if hotwords else None
        self.lm = None
        if self.decoder == "beam" and use_lm and (pkg / "lm.onnx").is_file():
            info = self.config.get("lm") or {}
            self.lm = OnnxLMScorer(pkg / "lm.onnx", threads, info.get("layers"), info.get("hidden"))

    def _check_graph(self, model_file: Path) -> None:
        """The graph's feature dim and output size must match this package's features and tokens
        (an ONNX file copied in from another model would otherwise fail deep inside onnxruntime or
        decode with the wrong token set)."""
        got_in = self.acoustic.sess.get_inputs()[0].shape[-1]
        got_out = self.acoustic.sess.get_outputs()[0].shape[-1]
        want_in, want_out = self.features.spec.dim, len(self.tokens.tokens)
        if (isinstance(got_in, int) and got_in != want_in) or (isinstance(got_out, int) and got_out != want_out):
            from ..errors import ModelPackageError

            raise ModelPackageError(
                f"{model_file} is from another model: it takes {got_in} input features and outputs {got_out} "
                f"tokens, but {self.package_dir}/runtime.json gives {want_in} features and tokens.txt has "
                f"{want_out} tokens; export the package again with `asr export`")

    # ---- building blocks ----
    @property
    def streaming(self) -> bool:
        return bool(self.model_info.get("streaming")) and self._stream_path.is_file()

    def stream_session(self) -> StreamSession:
        if self._stream_session is None:
            m = self.model_info
            self._stream_session = StreamSession(self._stream_path, self.threads, m["layers"], m["hidden"])
        return self._stream_session

    def normalize(self, feats: np.ndarray) -> np.ndarray:
        if self.cmvn_mean is None:
            return feats
        return ((feats - self.cmvn_mean) / self.cmvn_std).astype(np.float32, copy=False)

    def compute_features(self, audio: np.ndarray) -> np.ndarray:
        return self.normalize(self.features.compute(audio))

    def log_probs(self, audio: np.ndarray) -> np.ndarray:
        feats = self.compute_features(audio)
        return self.acoustic(feats)

    def decode(self, log_probs: np.ndarray) -> str:
        if self.decoder == "beam":
            from ..decode.beam import beam_search

            hyps = beam_search(log_probs, self.tokens, self.decode_options, lm=self.lm, hotwords=self.hotwords or ())
            return hyps[0].text if hyps else ""
        return self.tokens.decode(greedy_decode(log_probs, blank_id=self.tokens.blank_id)[0])

    def _load(self, path_or_array, sample_rate):
        if isinstance(path_or_array, (str, os.PathLike)):
            from ..audio import read_audio

            return read_audio(path_or_array, self.sample_rate)
        x = np.asarray(path_or_array, np.float32)
        if x.ndim == 2:  # (N, channels) -> mono
            x = x.mean(axis=1) if x.shape[1] < x.shape[0] else x.mean(axis=0)
        sr = self.sample_rate if sample_rate is None else int(sample_rate)
        if sr != self.sample_rate:
            from ..audio import resample

            x = resample(x, sr, self.sample_rate)
        return x

    # ---- public API ----
    def transcribe(self, path_or_array, sample_rate: int | None = None) -> str:
        """Transcribe a file path or a float array (``sample_rate`` defaults to the model's).

        Any length: a file is read in blocks and cut at quiet points into pieces of at most 30 s
        (:func:`asr.segment.iter_pieces`, the cuts the PyTorch API makes), decoded one by one.
        """
        from ..segment import MAX_PIECE_SECONDS, iter_pieces

        if isinstance(path_or_array, (str, os.PathLike)):
            from ..audio import iter_audio_blocks

            blocks = iter_audio_blocks(path_or_array, self.sample_rate, MAX_PIECE_SECONDS)
        else:
            blocks = [self._load(path_or_array, sample_rate)]
        texts = [self.decode(self.log_probs(p)) for p in iter_pieces(blocks, self.sample_rate, MAX_PIECE_SECONDS)]
        return " ".join(t for t in texts if t)

    def transcribe_batch(self, audios: list, sample_rate: int | None = None) -> list[str]:
        feats = [self.compute_features(self._load(a, sample_rate)) for a in audios]
        lp, lens = self.acoustic.batch(feats)
        return [self.decode(lp[i, : int(n)]) for i, n in enumerate(lens)]

    def segmenter(self, **kwargs) -> EnergySegmenter:
        return EnergySegmenter(self.sample_rate, **kwargs)

    def transcribe_long(self, path_or_array, sample_rate: int | None = None, *, block_seconds: float = 30.0,
                        **vad_kwargs) -> list[TimedSegment]:
        """Any-length audio, segment by segment (energy VAD), with bounded memory.

        Files are read in blocks (:func:`asr.audio.iter_audio_blocks`), so memory is bounded by the
        block and the longest segment (``max_segment``, default 20 s). Returns segments with start/end
        seconds and text (empty segments dropped).
        """
        seg = self.segmenter(**vad_kwargs)
        if isinstance(path_or_array, (str, os.PathLike)):
            from ..audio import iter_audio_blocks

            blocks = iter_audio_blocks(path_or_array, self.sample_rate, block_seconds)
        else:
            blocks = [self._load(path_or_array, sample_rate)]
        out: list[TimedSegment] = []
        total = 0

        def handle(segs):
            for s in segs:
                audio = s.audio[: max(0, total - s.start)] if s.end > total else s.audio
                text = self.transcribe(audio)
                if text:
                    out.append(TimedSegment(s.start / self.sample_rate,
                                            (s.start + len(audio)) / self.sample_rate, text))

        for b in blocks:
            total += len(b)
            handle(seg.accept(b))
        handle(seg.flush())
        return out


def rtf_of(fn, audio_seconds: float, repeats: int = 3) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)) / audio_seconds
