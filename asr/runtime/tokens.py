"""The token set of the runtime (no torch, no sentencepiece); tokens.txt is read by :mod:`asr.text`.

Same interface the beam search uses from :mod:`asr.text` tokenizers: ``tokens``, ``blank_id``,
``space_id`` (``|`` for characters, None for BPE), ``word_start_ids`` (BPE pieces starting with
``▁``), ``vocab_size``, ``decode(ids)`` and ``encode(text)`` (characters only, for hotwords/lexicon).
"""
from __future__ import annotations

from pathlib import Path

BLANK = "<blank>"
SPACE = "|"
WORD_START = "\u2581"


class Tokens:
    def __init__(self, tokens: list[str]):
        self.tokens = list(tokens)
        self.blank_id = 0
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.is_bpe = SPACE not in self.index and any(t.startswith(WORD_START) for t in self.tokens)
        self.space_id = None if self.is_bpe else self.index.get(SPACE)
        self.word_start_ids = [i for i, t in enumerate(self.tokens) if t.startswith(WORD_START)] if self.is_bpe else []

    @classmethod
    def load(cls, path: str | Path) -> "Tokens":
        """Read ``tokens.txt`` with the toolkit's one reader (:mod:`asr.text`; TextError names the line)."""
        from ..text import _read_tokens_txt

        return cls(_read_tokens_txt(Path(path)))

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def decode(self, ids) -> str:
        pieces = []
        for i in ids:
            i = int(i)
            if i == self.blank_id or i < 0 or i >= len(self.tokens):
                continue
            t = self.tokens[i]
            if t.startswith("<") and t.endswith(">"):
                continue
            pieces.append(t)
        if self.is_bpe:
            s = "".join(pieces).replace(WORD_START, " ")
        else:
            s = "".join(" " if p == SPACE else p for p in pieces)
        return " ".join(s.split())

    def encode(self, text: str) -> list[int]:
        if self.is_bpe:
            raise NotImplementedError("encoding text needs sentencepiece (asr.text.BPETokenizer)")
        out = []
        for ch in " ".join(text.lower().split()):
            key = SPACE if ch == " " else ch
            if key not in self.index:
                raise ValueError(f"character {ch!r} is not in the token set")
            out.append(self.index[key])
        return out
