"""CTC acoustic model: convolutional front end that subsamples time, (Bi)LSTM stack, CTC head.

The front end is two 3x3 Conv2d layers with "valid" padding in time (so that chunked streaming
with a small frame buffer reproduces whole-utterance output exactly) and "same" padding in
frequency. Output frame ``j`` of a ``subsampling=4`` front end sees input frames ``4j .. 4j+6``
(``3j .. 3j+8`` for ``subsampling=3``: stride 3, then 1).
The LSTM runs on packed sequences (cuDNN on GPU, ONNX ``sequence_lens``) or, on CPU where
PyTorch's packed LSTM is several times slower, with each direction of each layer run on its own and
the backward one fed every utterance reversed within its own length (``mode="split"``): the same
outputs as packing, at the speed of the padded batch. ``bidirectional: false`` gives the streaming
variant from the same config.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import ConfigError

LSTMMode = Literal["packed", "split", "padded"]
# time strides of the two front-end convolutions for each subsampling factor
STRIDES = {1: (1, 1), 2: (2, 1), 3: (3, 1), 4: (2, 2)}


@dataclass(frozen=True)
class AcousticModelConfig:
    conv_channels: int = 32  # channels of both front-end Conv2d layers (0 = no conv front end)
    subsampling: int = 4  # time subsampling of the front end: 1, 2, 3 or 4
    hidden: int = 256  # LSTM hidden units per direction
    layers: int = 3  # number of stacked LSTM layers
    bidirectional: bool = True  # BiLSTM (offline) or unidirectional LSTM (streaming)
    projection: int = 0  # size of a linear projection after the LSTM stack (0 = none)
    dropout: float = 0.1  # dropout between LSTM layers and before the CTC head
    # subtract each utterance's mean feature vector (over its own frames, after the global CMVN)
    # inside the model, so every backend and the ONNX graph do it too: a per-utterance channel
    # normalisation; it needs the whole utterance, so only for the offline (bidirectional) model
    utt_mean_norm: bool = False

    def __post_init__(self) -> None:
        if self.subsampling not in STRIDES:
            raise ConfigError(f"subsampling must be 1, 2, 3 or 4, got {self.subsampling}")
        if self.conv_channels <= 0 and self.subsampling != 1:
            raise ConfigError("subsampling without a conv front end is not supported; set conv_channels > 0 "
                              "or subsampling 1")
        for k in ("hidden", "layers"):
            if getattr(self, k) < 1:
                raise ConfigError(f"{k} must be >= 1, got {getattr(self, k)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be within [0, 1), got {self.dropout}")
        if self.utt_mean_norm and not self.bidirectional:
            raise ConfigError("utt_mean_norm needs the whole utterance: not for a streaming "
                              "(bidirectional: false) model")


def _conv_out(length: torch.Tensor | int, stride: int):
    """Valid 3-tap convolution with the given stride along time."""
    return (length - 3) // stride + 1


def _reverse_within(lengths: torch.Tensor, total: int) -> torch.Tensor:
    """(B, T) time indices that reverse each row's first ``lengths[b]`` frames and keep the rest
    in place (the permutation is its own inverse)."""
    t = torch.arange(total, device=lengths.device)
    idx = lengths[:, None] - 1 - t[None, :]
    return torch.where(idx >= 0, idx, t[None, :].expand_as(idx))


def _gather_time(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return x.gather(1, idx[:, :, None].expand(-1, -1, x.shape[2]))


def utterance_mean_norm(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, F) minus each utterance's mean over its first ``lengths[b]`` frames; padding stays 0."""
    t = torch.arange(feats.shape[1], device=feats.device)
    mask = (t[None, :] < lengths[:, None].to(feats.device)).unsqueeze(-1).to(feats.dtype)
    mean = (feats * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1.0)
    return (feats - mean) * mask


class ConvFrontEnd(nn.Module):
    """Two Conv2d(3x3) + ReLU layers; time strides multiply to ``subsampling``."""

    def __init__(self, input_dim: int, channels: int, subsampling: int):
        super().__init__()
        if subsampling not in STRIDES:
            raise ValueError(f"subsampling must be 1, 2, 3 or 4, got {subsampling}")
        self.strides = STRIDES[subsampling]
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=(self.strides[0], 2), padding=(0, 1)),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=(self.strides[1], 2), padding=(0, 1)),
            nn.ReLU(),
        )
        f = input_dim
        for _ in range(2):
            f = (f + 2 - 3) // 2 + 1
        self.output_dim = channels * f
        # Frames the front end consumes beyond the last output's stride block (6 for ×4).
        self.receptive_field = 3 + 2 * self.strides[0]  # frames seen by one output frame

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for s in self.strides:
            lengths = _conv_out(lengths, s)
        return lengths.clamp(min=0)

    def min_input_frames(self) -> int:
        return self.receptive_field

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, T, F) -> (B, T', C*F')
        y = self.conv(x.unsqueeze(1))
        b, c, t, f = y.shape
        return y.transpose(1, 2).reshape(b, t, c * f)


class AcousticModel(nn.Module):
    """Conv front end + (Bi)LSTM + linear CTC head over ``vocab_size`` tokens (blank = 0)."""

    def __init__(self, cfg: AcousticModelConfig, input_dim: int, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.input_dim = input_dim
        self.vocab_size = vocab_size
        if cfg.conv_channels > 0:
            self.frontend: Optional[ConvFrontEnd] = ConvFrontEnd(input_dim, cfg.conv_channels, cfg.subsampling)
            lstm_in = self.frontend.output_dim
        else:
            if cfg.subsampling != 1:
                raise ValueError("subsampling without a conv front end is not supported; set conv_channels > 0")
            self.frontend = None
            lstm_in = input_dim
        self.lstm = nn.LSTM(
            lstm_in, cfg.hidden, num_layers=cfg.layers, batch_first=True,
            bidirectional=cfg.bidirectional, dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        out = cfg.hidden * (2 if cfg.bidirectional else 1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.proj = nn.Linear(out, cfg.projection) if cfg.projection > 0 else None
        self.head = nn.Linear(cfg.projection if cfg.projection > 0 else out, vocab_size)

    @property
    def subsampling(self) -> int:
        return self.cfg.subsampling if self.frontend is not None else 1

    def min_input_frames(self) -> int:
        return self.frontend.min_input_frames() if self.frontend is not None else 1

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.frontend.output_lengths(lengths) if self.frontend is not None else lengths

    def encode(self, feats: torch.Tensor) -> torch.Tensor:
        return self.frontend(feats) if self.frontend is not None else feats

    def head_log_probs(self, h: torch.Tensor) -> torch.Tensor:
        h = self.dropout(h)
        if self.proj is not None:
            h = torch.relu(self.proj(h))
        return torch.log_softmax(self.head(h).float(), dim=-1)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor,
                mode: LSTMMode = "packed") -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, F), lengths (B,) -> log_probs (B, T', V) float32, out_lengths (B,).

        ``mode`` is how the LSTM sees a batch of different lengths:

        * ``"packed"``: packed sequences (cuDNN; what ONNX export traces): every utterance's output
          is exactly what it would be alone.
        * ``"split"``: the same outputs as ``"packed"`` (to float rounding) without packing: each
          layer's directions run separately and the backward one reads each utterance reversed
          within its own length, so its padding comes after the real frames. On CPU this runs at
          the speed of the padded batch, several times faster than PyTorch's packed CPU LSTM.
        * ``"padded"``: the padded batch as it is: the backward direction of a shorter utterance
          starts on padding frames (the CPU trainer's behaviour before ``"split"`` existed).
        """
        min_t = self.min_input_frames()
        if feats.shape[1] < min_t:  # too short for the front end: pad with zeros (normalised silence)
            feats = nn.functional.pad(feats, (0, 0, 0, min_t - feats.shape[1]))
        lengths = lengths.clamp(min=min_t)  # an utterance shorter than the receptive field: padded to it
        if self.cfg.utt_mean_norm:
            feats = utterance_mean_norm(feats, lengths)
        x = self.encode(feats)
        out_lengths = self.output_lengths(lengths).clamp(min=1, max=x.shape[1])
        ragged = bool((out_lengths < x.shape[1]).any())
        if not ragged or mode == "padded" or (mode == "split" and not self.cfg.bidirectional):
            # equal lengths, or a forward-only LSTM: trailing padding cannot reach the real frames
            y, _ = self.lstm(x)
        elif mode == "split":
            y = self._split_directions(x, out_lengths)
        elif mode == "packed":
            packed = pack_padded_sequence(x, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.lstm(packed)
            y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        else:
            raise ValueError(f"unknown LSTM mode {mode!r}; use packed, split or padded")
        return self.head_log_probs(y), out_lengths

    def _split_directions(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The bidirectional stack layer by layer, with ``self.lstm``'s own weights (so the state
        dict, export and every loader stay as they are); see ``forward(mode="split")``."""
        lstm = self.lstm
        if not hasattr(self, "_direction_shells"):
            # stand-ins whose own weights are never used (functional_call swaps in self.lstm's), kept
            # out of the state dict; built with the global RNG saved and restored, so that building
            # them on the first forward does not shift the dropout/SpecAugment draws (exact resume)
            with torch.random.fork_rng(devices=[]):
                shells = [nn.LSTM(lstm.input_size if layer == 0 else 2 * lstm.hidden_size, lstm.hidden_size,
                                  batch_first=True, bias=lstm.bias) for layer in range(lstm.num_layers)]
            object.__setattr__(self, "_direction_shells", shells)
        rev = _reverse_within(lengths.to(x.device), x.shape[1])
        y = x
        for layer, shell in enumerate(self._direction_shells):
            names = [n for n in shell._flat_weights_names]
            fwd = {n: getattr(lstm, n.replace("_l0", f"_l{layer}")) for n in names}
            bwd = {n: getattr(lstm, n.replace("_l0", f"_l{layer}_reverse")) for n in names}
            a, _ = functional_call(shell, fwd, (y,))
            b, _ = functional_call(shell, bwd, (_gather_time(y, rev),))
            y = torch.cat([a, _gather_time(b, rev)], dim=-1)
            if layer + 1 < lstm.num_layers and lstm.dropout > 0:
                y = nn.functional.dropout(y, lstm.dropout, self.training)
        return y

    def forward_unpacked(self, feats: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """Batch without padding (e.g. batch 1 or export): returns (log_probs, (h, c)).

        For the unidirectional model, ``state`` carries the LSTM state across chunks.
        """
        x = self.encode(feats)
        y, new_state = self.lstm(x, state)
        return self.head_log_probs(y), new_state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
