"""CTC acoustic model: convolutional front end that subsamples time, (Bi)LSTM stack, CTC head.

The front end is two 3x3 Conv2d layers with "valid" padding in time (so that chunked streaming
with a small frame buffer reproduces whole-utterance output exactly) and "same" padding in
frequency. Output frame ``j`` of a ``subsampling=4`` front end sees input frames ``4j .. 4j+6``.
The LSTM uses packed sequences (cuDNN on GPU). ``bidirectional: false`` gives the streaming
variant from the same config.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass(frozen=True)
class AcousticModelConfig:
    conv_channels: int = 32  # channels of both front-end Conv2d layers (0 = no conv front end)
    subsampling: int = 4  # time subsampling of the front end: 1, 2 or 4
    hidden: int = 256  # LSTM hidden units per direction
    layers: int = 3  # number of stacked LSTM layers
    bidirectional: bool = True  # BiLSTM (offline) or unidirectional LSTM (streaming)
    projection: int = 0  # size of a linear projection after the LSTM stack (0 = none)
    dropout: float = 0.1  # dropout between LSTM layers and before the CTC head


def _conv_out(length: torch.Tensor | int, stride: int):
    """Valid 3-tap convolution with the given stride along time."""
    return (length - 3) // stride + 1


class ConvFrontEnd(nn.Module):
    """Two Conv2d(3x3) + ReLU layers; time strides multiply to ``subsampling``."""

    def __init__(self, input_dim: int, channels: int, subsampling: int):
        super().__init__()
        if subsampling not in (1, 2, 4):
            raise ValueError(f"subsampling must be 1, 2 or 4, got {subsampling}")
        self.strides = {1: (1, 1), 2: (2, 1), 4: (2, 2)}[subsampling]
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

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, pack: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, F), lengths (B,) -> log_probs (B, T', V) float32, out_lengths (B,).

        ``pack=True`` runs the LSTM on packed sequences, so every utterance's output is exactly what
        it would be alone. ``pack=False`` runs it on the padded batch: the backward direction of a
        shorter utterance then starts on a few padding frames. The trainer uses that on CPU, where
        PyTorch's packed LSTM is ~4x slower; length bucketing keeps the padding to a few percent.
        """
        min_t = self.min_input_frames()
        if feats.shape[1] < min_t:  # too short for the front end: pad with zeros (normalised silence)
            feats = nn.functional.pad(feats, (0, 0, 0, min_t - feats.shape[1]))
            lengths = lengths.clamp(min=min_t)
        lengths = lengths.clamp(min=min_t)
        x = self.encode(feats)
        out_lengths = self.output_lengths(lengths).clamp(min=1, max=x.shape[1])
        if pack and bool((out_lengths < x.shape[1]).any()):
            packed = pack_padded_sequence(x, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.lstm(packed)
            y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        else:  # equal lengths (e.g. batch of one): packing would change nothing
            y, _ = self.lstm(x)
        return self.head_log_probs(y), out_lengths

    def forward_unpacked(self, feats: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """Batch without padding (e.g. batch 1 or export): returns (log_probs, (h, c)).

        For the unidirectional model, ``state`` carries the LSTM state across chunks.
        """
        x = self.encode(feats)
        y, new_state = self.lstm(x, state)
        return self.head_log_probs(y), new_state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
