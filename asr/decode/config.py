"""Decode settings: every option of the search, stored in a model package as ``decode.yaml``.

One frozen dataclass, as whisper's ``DecodingOptions``: a caller changes a setting with
``dataclasses.replace`` (or ``beam_search(..., beam=4)``, which does that), and no other module
repeats a default. Values are checked when the config is built, so a bad ``decode.yaml`` key, a bad
``--beam`` or a bad override is refused before any audio is decoded.

``hotwords`` and ``lexicon`` are inline lists (not paths), so a package's ``decode.yaml`` and an
ONNX package's ``runtime.json`` stay self-contained and movable; the commands read files into them
(``--hotwords FILE``, ``--lexicon FILE``: :mod:`asr.decode.hotwords`). They, and ``nbest > 1``, only
work in the beam search: the recognizer switches a greedy config to ``method: beam`` for them
(and refuses ``method="greedy"`` asked for together with them).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigError


@dataclass(frozen=True)
class DecodeConfig:
    method: Literal["greedy", "beam"] = "greedy"  # best path, or CTC prefix beam search (+ LM if present)
    beam: int = 10  # beam width: prefixes kept after each frame (>= 1)
    alpha: float = 0.5  # LM weight (shallow fusion), >= 0; 0 = no LM
    beta: float = 1.0  # word insertion bonus per word (applied only with an LM)
    use_lm: bool = True  # fuse the package's LM when it has one
    batch_frames: int = 40000  # decode batch size in padded input frames
    nbest: int = 1  # hypotheses returned by the beam search, best first (at most `beam` come back)
    token_prune_topk: int | None = 20  # tokens tried per frame, most likely first; None = all
    prune_threshold: float | None = -12.0  # tokens with a frame log-prob below this are not tried (<= 0); None = off
    beam_threshold: float | None = 30.0  # candidates this far below the frame's best are dropped (>= 0); None = off
    blank_skip_threshold: float = 0.999  # frames with P(blank) above this only carry the beam on; >= 1 = never
    hotword_weight: float = 2.0  # bonus per token of a hotword being spelled (>= 0), taken back if unfinished
    use_ngram: bool = True  # fuse the package's word n-gram LM (lm.arpa) when it has one
    ngram_weight: float = 0.5  # weight of the n-gram LM's ln p(word | history) (>= 0); beta is its word bonus too
    unk_offset: float = -10.0  # ln score (before ngram_weight) of a word or partial word outside the n-gram vocabulary, x len/6 past 6 tokens (<= 0)
    lstm_mode: Literal["fusion", "rescore"] = "fusion"  # with an n-gram LM: the LSTM LM fused per token, or rescoring the N-best
    rescore_nbest: int = 16  # hypotheses the n-gram search keeps for LSTM rescoring (lstm_mode rescore)
    hotwords: tuple[str, ...] = ()  # boosted phrases: "phrase", "phrase BOOST" or "phrase<TAB>BOOST" (asr.decode.hotwords)
    lexicon: tuple[str, ...] = ()  # the only words the search may spell; () = any word

    @property
    def needs_beam(self) -> bool:
        """Settings only the beam search applies: hotwords, a lexicon, more than one hypothesis."""
        return bool(self.hotwords or self.lexicon) or self.nbest > 1

    def __post_init__(self) -> None:
        from .hotwords import hotword_entries, lexicon_entries

        # canonical, hashable lists: a list given in Python becomes a tuple, entries are checked
        object.__setattr__(self, "hotwords", hotword_entries(self.hotwords, "decode option hotwords"))
        if self.lexicon:
            object.__setattr__(self, "lexicon", lexicon_entries(self.lexicon, "decode option lexicon"))

        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ConfigError(f"decode option {name}={getattr(self, name)!r}: {rule}")

        need(self.method in ("greedy", "beam"), "method", "must be 'greedy' or 'beam'")
        for name in ("alpha", "beta", "hotword_weight", "blank_skip_threshold", "prune_threshold", "beam_threshold",
                     "ngram_weight", "unk_offset"):
            v = getattr(self, name)
            need(v is None or not math.isnan(v), name, "must be a number, not NaN")
        for name in ("beam", "nbest", "batch_frames", "rescore_nbest"):
            v = getattr(self, name)
            need(_is_count(v), name, "must be an integer >= 1")
        need(self.token_prune_topk is None or _is_count(self.token_prune_topk), "token_prune_topk",
             "must be an integer >= 1, or None to try every token")
        # alpha, hotword_weight >= 0 and beta of any sign keep the kernel's bound-based pruning exact
        need(self.alpha >= 0, "alpha", "must be >= 0 (the LM weight)")
        need(self.hotword_weight >= 0, "hotword_weight", "must be >= 0")
        need(self.ngram_weight >= 0, "ngram_weight", "must be >= 0 (the n-gram LM weight)")
        need(self.unk_offset <= 0, "unk_offset", "must be <= 0 (a log-probability offset)")
        need(self.lstm_mode in ("fusion", "rescore"), "lstm_mode", "must be 'fusion' or 'rescore'")
        need(self.prune_threshold is None or self.prune_threshold <= 0, "prune_threshold",
             "must be <= 0 (a log-probability), or None for no threshold")
        need(self.beam_threshold is None or self.beam_threshold >= 0, "beam_threshold",
             "must be >= 0, or None for no threshold")
        need(self.blank_skip_threshold > 0, "blank_skip_threshold",
             "must be > 0 (a probability; >= 1 never skips a frame)")


def _is_count(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1


def override(base: DecodeConfig, source: str, **changes) -> DecodeConfig:
    """``base`` with the ``changes`` that are not None (options a user gave, e.g. ``--beam``); a
    value the config refuses raises ConfigError naming ``source`` (``"asr decode --beam 0"``)."""
    given = {k: v for k, v in changes.items() if v is not None}
    try:
        return dataclasses.replace(base, **given)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
