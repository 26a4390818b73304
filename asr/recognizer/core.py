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
  field by field by keyword arguments: ``Recognizer(pkg, method="beam", beam=50)``);
* word timing: the chosen hypothesis is force-aligned to the emissions
  (:func:`asr.decode.align.align_words`), giving each word's start and end in seconds of the
  input and a confidence; N-best lists with their acoustic, LM and total scores.
  ``transcribe(x)`` returns the text, ``transcribe(x, word_timestamps=True)`` or
  ``transcribe(x, nbest=5)`` a :class:`Transcript`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from ..errors import ConfigError, ModelPackageError
from .backend import AcousticBackend, AcousticInfo

GROUP_PIECES = 4  # 30 s pieces of one file batched through the model at once (<= 2 min of audio in memory)


@dataclass
class TimedSegment:
    start: float  # seconds from the start of the input
    end: float
    text: str
    words: list = field(default_factory=list)  # asr.decode.align.Word entries when word timing is asked for
    nbest: list = field(default_factory=list)  # asr.decode.beam.Hypothesis entries, best first, when asked for


@dataclass(frozen=True)
class Transcript:
    """What ``transcribe(..., word_timestamps=True)`` or ``transcribe(..., nbest=N)`` returns."""

    text: str  # the best hypothesis of the whole input
    words: tuple = ()  # asr.decode.align.Word of every segment, in order (empty without word timing)
    segments: tuple = ()  # TimedSegment: the pieces (<= 30 s, cut at quiet points) or VAD segments
    nbest: tuple = ()  # asr.decode.beam.Hypothesis of the whole input, best first, with their scores
    duration: float = 0.0  # seconds of audio in the input

    @classmethod
    def from_segments(cls, segments: Sequence[TimedSegment], duration: float, nbest: Sequence = ()) -> "Transcript":
        return cls(" ".join(s.text for s in segments if s.text), tuple(w for s in segments for w in s.words),
                   tuple(segments), tuple(nbest), float(duration))


def combine_nbest(lists: Sequence[Sequence], n: int, separator: int | None = None) -> list:
    """The ``n`` best hypotheses of a concatenation of independently decoded pieces: scores add
    over pieces, so the top ``n`` sums of one entry per piece are exact (merged piece by piece).
    ``separator`` (a character model's space id) joins the pieces' tokens."""
    from ..decode.beam import Hypothesis

    empty = Hypothesis((), "", 0.0, 0.0, 0.0, 0.0)
    acc = [empty]
    for hyps in lists:
        hyps = list(hyps) or [empty]
        pairs = sorted(((a, b) for a in acc for b in hyps), key=lambda p: -(p[0].score + p[1].score))[:n]
        sep = (separator,) if separator is not None else ()
        acc = [Hypothesis(a.tokens + sep + b.tokens if a.tokens and b.tokens else a.tokens + b.tokens,
                          " ".join(t for t in (a.text, b.text) if t), a.score + b.score, a.am_score + b.am_score,
                          a.lm_score + b.lm_score, a.bonus + b.bonus) for a, b in pairs]
    return acc


def _backend_kind(pkg: Path, backend: str) -> str:
    if backend not in ("auto", "torch", "onnx"):
        raise ModelPackageError(f"backend must be auto, torch or onnx, got {backend!r}")
    if backend != "auto":
        return backend
    return "torch" if (pkg / "model.pt").is_file() else "onnx"


class Recognizer:
    """Speech recognizer over a model package (PyTorch or ONNX); see the module docstring.

    ``Recognizer(package_dir, backend="auto", device="cpu", threads=None, int8=False, decode=None,
    hotwords=None, lexicon=None, verify=True, **decode_overrides)``: ``backend`` auto takes
    ``model.pt`` when the package has it, else ``model.onnx``; ``threads`` sets onnxruntime's threads
    (default 1) or torch's (default: leave torch's setting); ``int8`` picks ``model.int8.onnx``;
    ``decode`` replaces the package's decode settings and ``decode_overrides`` (``method``, ``beam``,
    ``alpha``, ``nbest``, ...) replace single fields of them. ``hotwords`` (phrases, (phrase, boost)
    pairs or ``{phrase: boost}``) and ``lexicon`` (words) replace the settings' lists
    (:mod:`asr.decode.hotwords`); they and ``nbest > 1`` make a greedy config a beam search.
    ``verify=False`` skips the package check (format version, file hashes), for ``asr export``'s own
    check of a package it is still writing.
    """

    def __init__(self, package_dir: str | os.PathLike, *, backend: Literal["auto", "torch", "onnx"] = "auto",
                 device: str = "cpu", threads: int | None = None, int8: bool = False, decode=None,
                 hotwords=None, lexicon=None, verify: bool = True, **decode_overrides):
        from ..decode.config import override
        from ..decode.hotwords import hotword_entries, lexicon_entries, search_lists
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
        changes = dict(decode_overrides)
        if hotwords is not None:
            changes["hotwords"] = hotword_entries(hotwords)
        if lexicon is not None:
            changes["lexicon"] = lexicon_entries(lexicon)
        c = override(base, "decode options", **changes) if changes else base
        if c.needs_beam and c.method == "greedy":
            if changes.get("method") == "greedy":
                raise ConfigError("decode options: hotwords, a lexicon and nbest > 1 need the beam search, but "
                                  "method='greedy' was asked for: use method='beam' (or leave method out)")
            c = override(c, "decode options", method="beam")  # greedy best-path decoding cannot apply them
        self.decode_config = c
        # (phrase, boost) pairs and the lexicon words (None = any word), checked against the tokens
        self.hotwords, self.lexicon = search_lists(c.hotwords, c.lexicon, self.tokenizer, "decode options")
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
        if self.decode_config.method == "greedy":
            from ..decode.greedy import greedy_decode

            return [self.tokenizer.decode(greedy_decode(lp, blank_id=self.tokenizer.blank_id)[0]) for lp in log_probs]
        return [h[0].text if h else "" for h in self.decode_hypotheses(log_probs, chunk=chunk)]

    def decode_hypotheses(self, log_probs: Sequence[np.ndarray], nbest: int | None = None,
                          chunk: int = 64) -> list[list]:
        """Each emission's hypotheses (:class:`asr.decode.beam.Hypothesis`: tokens, text, total, acoustic
        and LM scores), best first: up to ``nbest`` (default ``decode.nbest``) from the beam search;
        greedy decoding has one, whose ``am_score`` is log P_ctc(tokens | x) as the beam search's is."""
        from ..decode.beam import Hypothesis

        c = self.decode_config
        n = c.nbest if nbest is None else int(nbest)
        if n < 1:
            from ..errors import ConfigError

            raise ConfigError(f"nbest={nbest!r}: must be an integer >= 1")
        if c.method == "greedy":
            from ..decode.align import ctc_log_likelihood
            from ..decode.greedy import greedy_decode

            out = []
            for lp in log_probs:
                toks = tuple(greedy_decode(lp, blank_id=self.tokenizer.blank_id)[0])
                am = ctc_log_likelihood(lp, toks, self.tokenizer.blank_id)
                out.append([Hypothesis(toks, self.tokenizer.decode(toks), am, am, 0.0, 0.0)])
            return out
        from ..decode.beam import beam_search_batch

        res: list[list] = []
        for i in range(0, len(log_probs), chunk):
            res += beam_search_batch(list(log_probs[i:i + chunk]), self.tokenizer, c, lm=self.lm,
                                     hotwords=self.hotwords, lexicon=self.lexicon, nbest=n, ngram=self.ngram)
        return res

    def words(self, log_probs: np.ndarray, tokens: Sequence[int], offset: float = 0.0) -> list:
        """:class:`asr.decode.align.Word` entries of ``tokens`` force-aligned to ``log_probs``, in
        seconds from ``offset`` (the emissions' start in the input)."""
        from ..decode.align import align_words

        return align_words(log_probs, tokens, self.tokenizer, self.output_frame_shift, offset)

    def decode_words(self, log_probs: Sequence[np.ndarray], nbest: int | None = None,
                     chunk: int = 64) -> list[tuple[list, list]]:
        """(hypotheses, words of the best one) of each emission (see :meth:`decode_hypotheses`)."""
        out = []
        for lp, hyps in zip(log_probs, self.decode_hypotheses(log_probs, nbest, chunk)):
            out.append((hyps, self.words(lp, hyps[0].tokens) if hyps else []))
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
    def transcribe(self, audio, sample_rate: int | None = None, *, word_timestamps: bool = False,
                   nbest: int | None = None):
        """Text of a file path, or of a 1-D (samples) / 2-D (samples, channels) float array at
        ``sample_rate``; any format soundfile reads, any rate, channel count and length.

        With ``word_timestamps=True`` or ``nbest=N`` it returns a :class:`Transcript` instead:
        the text, the words with start/end seconds and confidences (when ``word_timestamps``), the
        pieces as segments, and the ``N`` (default ``decode.nbest``) best hypotheses of the whole
        input with their scores (greedy decoding has one)."""
        if not word_timestamps and nbest is None:
            return " ".join(s.text for s in self._pieces(audio, sample_rate) if s.text)
        n = self.decode_config.nbest if nbest is None else nbest
        return self._transcript(self._pieces(audio, sample_rate, words=word_timestamps, nbest=n), n)

    def _transcript(self, segs: Sequence[TimedSegment], n: int) -> Transcript:
        """The :class:`Transcript` of one input's decoded pieces (N-best of the whole input)."""
        duration = segs[-1].end if segs else 0.0
        return Transcript.from_segments(segs, duration, combine_nbest([s.nbest for s in segs], n,
                                                                      self.tokenizer.space_id))

    def _segment(self, wave: np.ndarray, lp: np.ndarray, hyps: Sequence, pos: int, words: bool) -> TimedSegment:
        """The piece ``wave`` starting at sample ``pos``, decoded to ``hyps`` (best first), with the
        best one's words when ``words``."""
        sr = self.sample_rate
        best = hyps[0] if hyps else None
        w = self.words(lp, best.tokens, pos / sr) if words and best is not None else []
        return TimedSegment(pos / sr, (pos + len(wave)) / sr, best.text if best else "", w, list(hyps))

    def _pieces(self, audio, sample_rate, words: bool = False, nbest: int | None = None) -> list[TimedSegment]:
        """The input's pieces (<= 30 s, cut at quiet points) decoded: text only, or (``nbest``
        given) with their hypotheses and, when ``words``, the best one's words."""
        from ..segment import MAX_PIECE_SECONDS, group_pieces, iter_pieces

        sr = self.sample_rate
        out: list[TimedSegment] = []
        pos = 0
        pieces = iter_pieces(self._blocks(audio, sample_rate, MAX_PIECE_SECONDS), sr, MAX_PIECE_SECONDS)
        for group in group_pieces(pieces, int(GROUP_PIECES * MAX_PIECE_SECONDS * sr)):
            lps = self.emissions([self.compute_features(p) for p in group])
            if nbest is None:
                for p, t in zip(group, self.decode_batch(lps)):
                    out.append(TimedSegment(pos / sr, (pos + len(p)) / sr, t))
                    pos += len(p)
                continue
            for p, lp, hyps in zip(group, lps, self.decode_hypotheses(lps, nbest)):
                out.append(self._segment(p, lp, hyps, pos, words))
                pos += len(p)
        return out

    def transcribe_batch(self, audios: Sequence, sample_rate: int | None = None, *, word_timestamps: bool = False,
                         nbest: int | None = None) -> list:
        """Texts of several short inputs (files or arrays, each at most one piece: 30 s), batched
        through the model together; with ``word_timestamps=True`` or ``nbest=N`` a
        :class:`Transcript` of each, as :meth:`transcribe` gives it alone."""
        from ..audio import read_audio

        waves = [read_audio(a, self.sample_rate) if isinstance(a, (str, os.PathLike))
                 else self._array_wave(a, sample_rate) for a in audios]
        lps = self.emissions([self.compute_features(w) for w in waves])
        if not word_timestamps and nbest is None:
            return self.decode_batch(lps)
        n = self.decode_config.nbest if nbest is None else nbest
        return [self._transcript([self._segment(w, lp, hyps, 0, word_timestamps)], n)
                for w, lp, hyps in zip(waves, lps, self.decode_hypotheses(lps, n))]

    def segmenter(self, **kwargs):
        from ..runtime.vad import EnergySegmenter

        return EnergySegmenter(self.sample_rate, **kwargs)

    def transcribe_long(self, audio, sample_rate: int | None = None, *, block_seconds: float = 30.0,
                        word_timestamps: bool = False, nbest: int | None = None, **vad_kwargs) -> list[TimedSegment]:
        """Any-length audio, segment by segment (energy VAD), in bounded memory: segments with their
        start/end seconds and text (empty ones dropped). Memory is bounded by the block and the
        longest segment (``max_segment``, default 20 s). ``word_timestamps`` fills each segment's
        ``words`` (seconds of the whole input); ``nbest`` its ``nbest`` hypotheses."""
        seg = self.segmenter(**vad_kwargs)
        sr = self.sample_rate
        out: list[TimedSegment] = []
        total = 0

        def handle(segs) -> None:
            for s in segs:
                audio_s = s.audio[: max(0, total - s.start)] if s.end > total else s.audio
                if not len(audio_s):
                    continue
                start = s.start / sr
                if not word_timestamps and nbest is None:
                    text, words, hyps = self.transcribe(audio_s, sr), [], []
                else:
                    t = self.transcribe(audio_s, sr, word_timestamps=word_timestamps, nbest=nbest)
                    text, words, hyps = t.text, [w.shifted(start) for w in t.words], list(t.nbest)
                if text:
                    out.append(TimedSegment(start, (s.start + len(audio_s)) / sr, text, words, hyps))

        for b in self._blocks(audio, sample_rate, block_seconds):
            total += len(b)
            handle(seg.accept(b))
        handle(seg.flush())
        return out
