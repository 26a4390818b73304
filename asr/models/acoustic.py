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
    # LayerNorm (learned gain and bias) over each LSTM layer's output, both directions together,
    # before the next layer reads it: the stack then runs layer by layer (same weights and state
    # layout as without it, plus one LayerNorm per gap between layers)
    layer_norm: bool = False

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
        self.norms = (nn.ModuleList(nn.LayerNorm(out) for _ in range(cfg.layers - 1))
                      if cfg.layer_norm and cfg.layers > 1 else None)
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
        if mode not in ("packed", "split", "padded"):
            raise ValueError(f"unknown LSTM mode {mode!r}; use packed, split or padded")
        if self.norms is not None:
            y = self._layer_by_layer(x, out_lengths, mode if ragged else "padded")
        elif not ragged or mode == "padded" or (mode == "split" and not self.cfg.bidirectional):
            # equal lengths, or a forward-only LSTM: trailing padding cannot reach the real frames
            y, _ = self.lstm(x)
        elif mode == "split":
            y = self._split_directions(x, out_lengths)
        elif mode == "packed":
            packed = pack_padded_sequence(x, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.lstm(packed)
            y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return self.head_log_probs(y), out_lengths

    def _shell(self, layer: int, bidirectional: bool) -> nn.LSTM:
        """A one-layer LSTM of layer ``layer``'s shape whose own weights are never used
        (``_run_layer`` puts ``self.lstm``'s in their place), kept out of the state dict; built with the
        global RNG saved and restored, so that building it on the first forward does not shift the
        dropout/SpecAugment draws (exact resume)."""
        lstm = self.lstm
        if not hasattr(self, "_shells"):
            object.__setattr__(self, "_shells", {})
        key = (layer > 0, bidirectional)
        if key not in self._shells:
            with torch.random.fork_rng(devices=[]):
                n_in = lstm.input_size if layer == 0 else lstm.hidden_size * (2 if lstm.bidirectional else 1)
                self._shells[key] = nn.LSTM(n_in, lstm.hidden_size, batch_first=True, bias=lstm.bias,
                                            bidirectional=bidirectional)
        return self._shells[key]

    def _run_layer(self, layer: int, x, state=None, direction: str = ""):
        """Layer ``layer`` of ``self.lstm`` alone, on a tensor or a PackedSequence: both directions
        (``direction=""``), or one direction of a bidirectional layer (``"fwd"`` / ``"bwd"``)."""
        shell = self._shell(layer, self.lstm.bidirectional and not direction)
        suffix = "_reverse" if direction == "bwd" else ""
        for n in shell._flat_weights_names:
            # the shell holds self.lstm's own Parameter objects (rebound on every call: the same
            # shell serves several layers and directions), so gradients reach them, and a trace
            # (ONNX export; torch.func.functional_call refuses to run under one) reads them as the
            # model's weights
            w = getattr(self.lstm, n.replace("_l0", f"_l{layer}") + ("" if n.endswith("_reverse") else suffix))
            if shell._parameters[n] is not w:
                setattr(shell, n, w)
        return shell(x) if state is None else shell(x, state)

    def _split_layer(self, layer: int, y: torch.Tensor, rev: torch.Tensor) -> torch.Tensor:
        """One bidirectional layer with the backward direction reading each utterance reversed
        within its own length; see ``forward(mode="split")``."""
        a, _ = self._run_layer(layer, y, direction="fwd")
        b, _ = self._run_layer(layer, _gather_time(y, rev), direction="bwd")
        return torch.cat([a, _gather_time(b, rev)], dim=-1)

    def _between_layers(self, layer: int, y: torch.Tensor) -> torch.Tensor:
        """What ``nn.LSTM`` does between two layers (dropout), after the layer's LayerNorm if any."""
        if layer + 1 >= self.lstm.num_layers:
            return y
        if self.norms is not None:
            y = self.norms[layer](y)
        if self.lstm.dropout > 0:
            y = nn.functional.dropout(y, self.lstm.dropout, self.training)
        return y

    def _split_directions(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The bidirectional stack layer by layer, with ``self.lstm``'s own weights (so the state
        dict, export and every loader stay as they are); see ``forward(mode="split")``."""
        rev = _reverse_within(lengths.to(x.device), x.shape[1])
        y = x
        for layer in range(self.lstm.num_layers):
            y = self._between_layers(layer, self._split_layer(layer, y, rev))
        return y

    def _layer_by_layer(self, x: torch.Tensor, lengths: torch.Tensor, mode: LSTMMode) -> torch.Tensor:
        """The stack one layer at a time (for the LayerNorm between layers), in any of the modes of
        ``forward``: packed per layer, split per layer, or the padded batch."""
        split = mode == "split" and self.lstm.bidirectional
        rev = _reverse_within(lengths.to(x.device), x.shape[1]) if split else None
        y = x
        for layer in range(self.lstm.num_layers):
            if split:
                y = self._split_layer(layer, y, rev)
            elif mode == "packed" and self.lstm.bidirectional:
                packed = pack_padded_sequence(y, lengths.cpu(), batch_first=True, enforce_sorted=False)
                out, _ = self._run_layer(layer, packed)
                y, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
            else:  # the padded batch, or a forward-only LSTM (padding comes after the real frames)
                y, _ = self._run_layer(layer, y)
            y = self._between_layers(layer, y)
        return y

    def forward_unpacked(self, feats: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """Batch without padding (e.g. batch 1 or export): returns (log_probs, (h, c)).

        For the unidirectional model, ``state`` carries the LSTM state across chunks.
        """
        x = self.encode(feats)
        if self.norms is None:
            y, new_state = self.lstm(x, state)
            return self.head_log_probs(y), new_state
        d = 2 if self.lstm.bidirectional else 1
        y, hs, cs = x, [], []
        for layer in range(self.lstm.num_layers):
            st = None if state is None else tuple(s[layer * d:(layer + 1) * d] for s in state)
            y, (h, c) = self._run_layer(layer, y, st)
            hs.append(h)
            cs.append(c)
            y = self._between_layers(layer, y)
        return self.head_log_probs(y), (torch.cat(hs, 0), torch.cat(cs, 0))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
