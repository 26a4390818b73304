"""The onnxruntime backend: ``model.onnx`` (+ ``model.int8.onnx``, ``stream.onnx``, ``lm.onnx``) and the
numpy front end of a package written by ``asr export``. No torch."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ModelPackageError
from ..package import open_onnx_session
from .backend import AcousticInfo
from .spec import read_runtime_spec


class StreamSession:
    """The streaming graph of a unidirectional model: (feats, h0, c0) -> (log_probs, hn, cn)."""

    def __init__(self, path, threads: int = 1, layers: int = 1, hidden: int = 1):
        self.sess = open_onnx_session(path, threads)
        self.layers, self.hidden = layers, hidden

    def initial_state(self, batch: int = 1):
        z = np.zeros((self.layers, batch, self.hidden), np.float32)
        return z, z.copy()

    def __call__(self, feats: np.ndarray, state):
        lp, h, c = self.sess.run(None, {"feats": feats[None].astype(np.float32, copy=False),
                                        "h0": state[0], "c0": state[1]})
        return lp[0], (h, c)


class OnnxLMScorer:
    """LSTM-LM step graph (``lm.onnx``) behind the :class:`~asr.recognizer.backend.LMScorer` protocol."""

    def __init__(self, path, threads: int = 1, layers: int | None = None, hidden: int | None = None):
        self.sess = open_onnx_session(path, threads)
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


class OnnxAcoustic:
    """:class:`~asr.recognizer.backend.AcousticBackend` over ``model.onnx`` (or ``model.int8.onnx``:
    asked for with ``int8``, or the only model of an int8-only package)."""

    def __init__(self, pkg: Path, threads: int = 1, int8: bool = False):
        from ..runtime.features import NumpyFeatures

        self.pkg = pkg
        self.threads = threads
        self.spec = read_runtime_spec(pkg)
        m = self.spec.model
        self.numpy_features = NumpyFeatures.from_package(pkg, self.spec.features)
        spec = self.numpy_features.cfg
        model_file = pkg / ("model.int8.onnx" if int8 else "model.onnx")
        if not int8 and not model_file.is_file() and (pkg / "model.int8.onnx").is_file():
            model_file = pkg / "model.int8.onnx"  # an int8-only package (the shipped one: asr/pretrained)
            int8 = True
        if not model_file.is_file():
            raise ModelPackageError(f"{model_file} is missing" + (" (export with --int8)" if int8 else ""))
        self.model_file = model_file
        self.sess = open_onnx_session(model_file, threads)
        n_out = self.sess.get_outputs()[0].shape[-1]
        self.info = AcousticInfo(
            sample_rate=int(spec.sample_rate), hop_length=int(spec.hop_length), input_dim=int(spec.dim),
            vocab_size=int(n_out) if isinstance(n_out, int) else m.vocab_size, subsampling=m.subsampling,
            min_input_frames=m.min_input_frames, bidirectional=m.bidirectional, layers=m.layers, hidden=m.hidden)
        got_in = self.sess.get_inputs()[0].shape[-1]
        if isinstance(got_in, int) and got_in != spec.dim:
            raise ModelPackageError(
                f"{model_file} is from another model: it takes {got_in} input features, but {pkg}/runtime.json "
                f"gives {spec.dim} features; export the package again with `asr export`")
        self._stream_path = pkg / ("stream.int8.onnx" if int8 and (pkg / "stream.int8.onnx").is_file()
                                   else "stream.onnx")
        self._stream_session: StreamSession | None = None

    @property
    def feature_config(self):
        return self.numpy_features.cfg

    def features(self, wave: np.ndarray) -> np.ndarray:
        return self.numpy_features.compute(wave)

    def log_probs(self, feats: Sequence[np.ndarray]) -> list[np.ndarray]:
        lens = np.array([max(len(f), self.info.min_input_frames) for f in feats], np.int64)
        x = np.zeros((len(feats), int(lens.max()), feats[0].shape[1]), np.float32)
        for i, f in enumerate(feats):
            x[i, : len(f)] = f  # zero frames = normalised silence, as AcousticModel.forward pads
        lp, out_lens = self.sess.run(None, {"feats": x, "lengths": lens})
        return [lp[i, : int(n)] for i, n in enumerate(out_lens)]

    # ---- streaming (unidirectional models exported with stream.onnx)
    @property
    def streaming(self) -> bool:
        return self.spec.model.streaming and self._stream_path.is_file()

    def stream_session(self) -> StreamSession:
        if self._stream_session is None:
            self._stream_session = StreamSession(self._stream_path, self.threads, self.info.layers, self.info.hidden)
        return self._stream_session

    def decode_settings(self):
        """The package's decode settings (runtime.json's "decode")."""
        return self.spec.decode

    def load_lm(self) -> OnnxLMScorer | None:
        if not (self.pkg / "lm.onnx").is_file():
            return None
        lm = self.spec.lm
        return OnnxLMScorer(self.pkg / "lm.onnx", self.threads, lm.layers if lm else None, lm.hidden if lm else None)
