"""The one recognizer: audio -> features -> acoustic backend -> decoder -> text, for PyTorch and ONNX
packages alike.

``Recognizer(package_dir)`` loads a package written by ``asr package`` (``model.pt``: the PyTorch
backend) or by ``asr export`` (``model.onnx``: the onnxruntime backend, no torch). The backends
differ only behind :class:`~asr.recognizer.backend.AcousticBackend` and
:class:`~asr.recognizer.backend.LMScorer`; what is written here once for both:

* input checks: a missing or unreadable file, NaN/Inf samples, an array without ``sample_rate``,
  an empty array or one of the wrong shape all raise :class:`~asr.errors.AudioError` with the same
  words; stereo (or more channels) is averaged to mono; any rate is resampled to the model's;
* global CMVN (numpy);
* long audio: files are read in blocks and cut at quiet points into pieces of at most 30 s as they
  arrive (:func:`asr.segment.iter_pieces`), so memory does not grow with the file;
* batching: pieces and utterances go through the model in length-sorted batches of at most
  ``decode.batch_frames`` padded frames;
* decoding: greedy, or the CTC prefix beam search with the package's LM in shallow fusion, with
  the settings of the frozen :class:`~asr.decode.config.DecodeConfig` (from the package, replaced
  field by field by keyword arguments: ``Recognizer(pkg, method="beam", beam=50)``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np

from ..errors import ModelPackageError
from .backend import AcousticBackend, AcousticInfo

GROUP_PIECES = 4  # 30 s pieces of one file batched through the model at once (<= 2 min of audio in memory)


@dataclass
class TimedSegment:
    start: float  # seconds from the start of the input
    end: float
    text: str
    words: list = field(default_factory=list)  # (word, start, end) when word timing is asked for


def _backend_kind(pkg: Path, backend: str) -> str:
    if backend not in ("auto", "torch", "onnx"):
        raise ModelPackageError(f"backend must be auto, torch or onnx, got {backend!r}")
    if backend != "auto":
        return backend
    return "torch" if (pkg / "model.pt").is_file() else "onnx"


class Recognizer:
    """Speech recognizer over a model package (PyTorch or ONNX); see the module docstring.

    ``Recognizer(package_dir, backend="auto", device="cpu", threads=None, int8=False, decode=None,
    hotwords=(), verify=True, **decode_overrides)``: ``backend`` auto takes ``model.pt`` when the
    package has it, else ``model.onnx``; ``threads`` sets onnxruntime's threads (default 1) or
    torch's (default: leave torch's setting); ``int8`` picks ``model.int8.onnx``; ``decode`` replaces
    the package's decode settings and ``decode_overrides`` (``method``, ``beam``, ``alpha``, ...)
    replace single fields of them. ``verify=False`` skips the package check (format version, file
    hashes), for ``asr export``'s own check of a package it is still writing.
    """

    def __init__(self, package_dir: str | os.PathLike, *, backend: Literal["auto", "torch", "onnx"] = "auto",
                 device: str = "cpu", threads: int | None = None, int8: bool = False, decode=None,
                 hotwords: Iterable[str] = (), verify: bool = True, **decode_overrides):
        from ..decode.config import override
        from ..package import check_package, load_cmvn, load_package_tokenizer

        pkg = Path(package_dir)
        info = check_package(pkg) if verify else None
        self.package_dir = pkg
        self.backend_kind = _backend_kind(pkg, backend)
        if self.backend_kind == "torch":
            try:
                from .torch_backend import TorchAcoustic
            except ImportError as e:
                raise ModelPackageError(
                    f"{pkg} is a PyTorch package (model.pt), which needs the training install ({e.name} is "
                    "missing): pip install 'asr[train]'; or run `asr export` where PyTorch is installed and use "
                    "the ONNX package, which this install reads") from None

            if info is None:
                from ..package import PackageInfo

                info = PackageInfo(pkg, {"files": {}})
            if not (pkg / "model.pt").is_file():
                raise ModelPackageError(f"{pkg} has no model.pt: the PyTorch backend needs a package from `asr package`")
            self.acoustic: AcousticBackend = TorchAcoustic(info, device, threads or 0)
        else:
            from .onnx_backend import OnnxAcoustic

            self.acoustic = OnnxAcoustic(pkg, 1 if threads is None else threads, int8)
        self.info: AcousticInfo = self.acoustic.info
        self.tokenizer = load_package_tokenizer(pkg)
        if self.info.vocab_size > 0 and self.tokenizer.vocab_size != self.info.vocab_size:
            raise ModelPackageError(
                f"{pkg}: tokens.txt has {self.tokenizer.vocab_size} tokens but the model outputs "
                f"{self.info.vocab_size}: tokens.txt is from another model; re-create the package")
        from ..features.cmvn import CMVN

        stats = load_cmvn(pkg, self.info.input_dim,
                          "features.yaml" if self.backend_kind == "torch" else "runtime.json")
        self.cmvn = CMVN(*stats) if stats is not None else None
        base = decode if decode is not None else self.acoustic.decode_settings()
        self.decode_config = override(base, "decode options", **decode_overrides) if decode_overrides else base
        self.hotwords = [" ".join(h.lower().split()) for h in hotwords if h.strip()]
        c = self.decode_config
        self.lm = self.acoustic.load_lm() if c.method == "beam" and c.use_lm else None
        from ..package import load_package_ngram

        self.ngram = load_package_ngram(pkg) if c.method == "beam" and c.use_ngram else None

    # ---- facts
    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    @property
    def frame_shift(self) -> float:
        return self.info.frame_shift

    @property
    def output_frame_shift(self) -> float:
        return self.info.output_frame_shift

    @property
    def feature_config(self):
        """The package's :class:`~asr.features.FeatureConfig` (dumped features equal to it are reused)."""
        return self.acoustic.feature_config

    @property
    def streaming(self) -> bool:
        """Chunked streaming with the LSTM state carried across chunks (unidirectional ONNX models)."""
        return self.acoustic.streaming

    def stream_session(self):
        if not self.streaming:
            raise ModelPackageError(f"{self.package_dir}: state-carrying streaming needs a unidirectional "
                                    "model exported with stream.onnx")
        return self.acoustic.stream_session()

    # ---- building blocks
    def normalize(self, feats: np.ndarray) -> np.ndarray:
        feats = np.asarray(feats, np.float32)
        return feats if self.cmvn is None else self.cmvn.apply(feats).astype(np.float32, copy=False)

    def compute_features(self, wave: np.ndarray) -> np.ndarray:
        """CMVN-normalised features (T, F) of float32 mono samples at the model rate."""
        return self.normalize(self.acoustic.features(wave))

    def emissions(self, feats: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Log-probabilities (T', V) of each normalised feature matrix, in length-sorted batches of
        at most ``decode.batch_frames`` padded frames."""
        out: list[np.ndarray | None] = [None] * len(feats)
        budget = self.decode_config.batch_frames
        batch: list[int] = []

        def flush() -> None:
            for i, lp in zip(batch, self.acoustic.log_probs([feats[i] for i in batch])):
                out[i] = lp

        for i in np.argsort([len(f) for f in feats], kind="stable"):
            if batch and len(feats[i]) * (len(batch) + 1) > budget:
                flush()
                batch = []
            batch.append(int(i))
        if batch:
            flush()
        return out  # type: ignore[return-value]

    def log_probs(self, wave: np.ndarray) -> np.ndarray:
        return self.emissions([self.compute_features(wave)])[0]

    def decode(self, log_probs: np.ndarray) -> str:
        return self.decode_batch([log_probs])[0]

    def decode_batch(self, log_probs: Sequence[np.ndarray], chunk: int = 64) -> list[str]:
        """Greedy or beam (+ LM) text of each emission; the beam search queries the LM for all at once."""
        c = self.decode_config
        if c.method == "greedy":
            from ..decode.greedy import greedy_decode

            return [self.tokenizer.decode(greedy_decode(lp, blank_id=self.tokenizer.blank_id)[0]) for lp in log_probs]
        from ..decode.beam import beam_search_batch

        out: list[str] = []
        for i in range(0, len(log_probs), chunk):
            hyps = beam_search_batch(list(log_probs[i:i + chunk]), self.tokenizer, c, lm=self.lm,
                                     hotwords=self.hotwords, ngram=self.ngram)
            out += [h[0].text if h else "" for h in hyps]
        return out

    # ---- input
    def _blocks(self, audio, sample_rate: int | None, block_seconds: float):
        """The input as float32 mono blocks at the model rate (a file is read block by block)."""
        from ..audio import iter_audio_blocks

        if isinstance(audio, (str, os.PathLike)):
            return iter_audio_blocks(audio, self.sample_rate, block_seconds)
        return [self._array_wave(audio, sample_rate)]

    def _array_wave(self, audio, sample_rate: int | None) -> np.ndarray:
        """A caller's array as float32 mono at the model rate (AudioError for a bad one)."""
        from ..audio import array_to_mono, resample

        return resample(array_to_mono(audio, sample_rate), int(sample_rate), self.sample_rate)

    # ---- public
    def transcribe(self, audio, sample_rate: int | None = None) -> str:
        """Text of a file path, or of a 1-D (samples) / 2-D (samples, channels) float array at
        ``sample_rate``; any format soundfile reads, any rate, channel count and length."""
        return " ".join(s.text for s in self._pieces_text(audio, sample_rate) if s.text)

    def _pieces_text(self, audio, sample_rate) -> list[TimedSegment]:
        from ..segment import MAX_PIECE_SECONDS, group_pieces, iter_pieces

        sr = self.sample_rate
        out: list[TimedSegment] = []
        pos = 0
        pieces = iter_pieces(self._blocks(audio, sample_rate, MAX_PIECE_SECONDS), sr, MAX_PIECE_SECONDS)
        for group in group_pieces(pieces, int(GROUP_PIECES * MAX_PIECE_SECONDS * sr)):
            texts = self.decode_batch(self.emissions([self.compute_features(p) for p in group]))
            for p, t in zip(group, texts):
                out.append(TimedSegment(pos / sr, (pos + len(p)) / sr, t))
                pos += len(p)
        return out

    def transcribe_batch(self, audios: Sequence, sample_rate: int | None = None) -> list[str]:
        """Texts of several short inputs (files or arrays), batched through the model together."""
        from ..audio import read_audio

        waves = [read_audio(a, self.sample_rate) if isinstance(a, (str, os.PathLike))
                 else self._array_wave(a, sample_rate) for a in audios]
        return self.decode_batch(self.emissions([self.compute_features(w) for w in waves]))

    def segmenter(self, **kwargs):
        from ..runtime.vad import EnergySegmenter

        return EnergySegmenter(self.sample_rate, **kwargs)

    def transcribe_long(self, audio, sample_rate: int | None = None, *, block_seconds: float = 30.0,
                        **vad_kwargs) -> list[TimedSegment]:
        """Any-length audio, segment by segment (energy VAD), in bounded memory: segments with their
        start/end seconds and text (empty ones dropped). Memory is bounded by the block and the
        longest segment (``max_segment``, default 20 s)."""
        seg = self.segmenter(**vad_kwargs)
        sr = self.sample_rate
        out: list[TimedSegment] = []
        total = 0

        def handle(segs) -> None:
            for s in segs:
                audio_s = s.audio[: max(0, total - s.start)] if s.end > total else s.audio
                text = self.transcribe(audio_s, sr) if len(audio_s) else ""
                if text:
                    out.append(TimedSegment(s.start / sr, (s.start + len(audio_s)) / sr, text))

        for b in self._blocks(audio, sample_rate, block_seconds):
            total += len(b)
            handle(seg.accept(b))
        handle(seg.flush())
        return out
