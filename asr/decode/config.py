"""Decode settings, stored in a model package as ``decode.yaml``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DecodeConfig:
    method: Literal["greedy", "beam"] = "greedy"  # best path, or CTC prefix beam search (+ LM if present)
    beam: int = 10  # beam width
    alpha: float = 0.5  # LM weight (shallow fusion); 0 = no LM
    beta: float = 1.0  # word insertion bonus per word
    use_lm: bool = True  # fuse the package's LM when it has one
    batch_frames: int = 40000  # decode batch size in padded input frames
