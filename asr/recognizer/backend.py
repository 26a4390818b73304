"""The two protocols the backends (PyTorch, onnxruntime) implement for :class:`asr.recognizer.Recognizer`.

Everything else (input checks, CMVN, segmentation of long audio, batching, decoding) is written
once in :mod:`asr.recognizer.core`, as pyctcdecode keeps its decoder behind an LM interface.
Torch-free: the torch backend imports torch in its own module only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class AcousticInfo:
    """What the recognizer needs to know of an acoustic model and its front end."""

    sample_rate: int  # audio rate the features are computed at
    hop_length: int  # samples between feature frames
    input_dim: int  # feature dimension the model reads
    vocab_size: int  # output tokens (blank = 0)
    subsampling: int  # feature frames per output frame
    min_input_frames: int  # shortest input the front end accepts (shorter ones are zero-padded)
    bidirectional: bool  # BiLSTM (offline) or unidirectional (streaming-capable)
    layers: int  # LSTM layers
    hidden: int  # LSTM units per direction

    @property
    def frame_shift(self) -> float:
        """Seconds per feature frame."""
        return self.hop_length / self.sample_rate

    @property
    def output_frame_shift(self) -> float:
        """Seconds per output (log-prob) frame."""
        return self.frame_shift * self.subsampling


class AcousticBackend(Protocol):
    """Features and log-probabilities of one acoustic model."""

    info: AcousticInfo
    feature_config: Any  # the package's asr.features.FeatureConfig
    streaming: bool  # chunked streaming with carried LSTM state (then it has stream_session())

    def features(self, wave: np.ndarray) -> np.ndarray:
        """float32 mono samples at ``info.sample_rate`` -> features (T, F) before CMVN."""

    def log_probs(self, feats: Sequence[np.ndarray]) -> list[np.ndarray]:
        """CMVN-normalised features of several utterances, run as one padded batch -> each
        utterance's log-probabilities (T', V), exactly as if it were alone."""


class LMScorer(Protocol):
    """A token LM for shallow fusion in the beam search (:mod:`asr.decode.beam`)."""

    def initial_state(self) -> Any:
        """The state before the first token."""

    def score_batch(self, states: Sequence[Any], tokens: np.ndarray) -> tuple[np.ndarray, list]:
        """One step for N hypotheses: (log-probs (N, V) of the next token, the N new states)."""
