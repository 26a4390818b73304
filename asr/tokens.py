"""Token sets: CTC labels <-> text, and the one reader/writer of ``tokens.txt``.

Both kinds share one interface: ``tokens`` (list, id = index), ``blank_id`` (always 0),
``space_id``, ``word_start_ids``, ``vocab_size``, ``encode(text) -> list[int]`` (raises
:class:`TextError` naming the characters it cannot encode), ``decode(ids) -> str`` (ids are
collapsed CTC output; blanks are skipped anyway), ``save(path)`` (writes ``tokens.txt`` as
``token id`` lines) and ``load(path)``.

* :class:`CharTokenizer`: ``<blank>`` = 0, ``|`` (word boundary, i.e. a space) = 1, ``'``, ``a``..``z``.
* :class:`BPETokenizer`: ``<blank>`` = 0, ``<unk>`` = 1, then the sentencepiece pieces (id = sentencepiece
  id + 1). Words start with pieces beginning with ``▁``; there is no separate space token, so
  ``space_id`` is ``None`` and ``word_start_ids`` lists the ids of pieces that begin a word. ``save``
  writes ``tokens.txt`` and ``bpe.model`` beside it; :func:`load_tokenizer` picks the kind from
  whether ``bpe.model`` is there. Decoding needs only ``tokens.txt``; sentencepiece is imported
  when text is encoded (training, hotwords, lexicons) or a tokenizer is trained.

Torch-free and dependency-free (numpy not even): the ONNX runtime reads packages with it.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterable, Sequence

from .atomic import atomic_copy, atomic_write_bytes, atomic_write_text
from .errors import TextError

__all__ = ["CharTokenizer", "BPETokenizer", "load_tokenizer", "read_tokens_txt", "copy_token_files", "BLANK",
           "SPACE", "UNK", "BPE_MODEL_NAME"]

BLANK = "<blank>"
SPACE = "|"
UNK = "<unk>"
BPE_MODEL_NAME = "bpe.model"
LM_BOUNDARY_ID = 0  # <s> and </s> of the token LM: the blank's id, which no transcript contains
WORD_START = "\u2581"

# ---------------------------------------------------------------------------------------------
# tokenizers
# ---------------------------------------------------------------------------------------------

DEFAULT_CHARS = [BLANK, SPACE, "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]


def read_tokens_txt(path: Path) -> list[str]:
    if not path.is_file():
        raise TextError(f"token list {path} does not exist")
    entries: dict[int, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(" ", 1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise TextError(f"{path}:{n}: expected 'token id', got {line!r}")
        tok, idx = parts[0], int(parts[1])
        if idx in entries:
            raise TextError(f"{path}:{n}: id {idx} appears twice")
        entries[idx] = tok
    ids = sorted(entries)
    if ids != list(range(len(ids))):
        raise TextError(f"{path}: token ids must be 0..{len(ids) - 1} without gaps")
    tokens = [entries[i] for i in ids]
    if not tokens or tokens[0] != BLANK:
        raise TextError(f"{path}: id 0 must be {BLANK}")
    return tokens


def _write_tokens_txt(path: Path, tokens: Sequence[str]) -> None:
    atomic_write_text(path, "".join(f"{t} {i}\n" for i, t in enumerate(tokens)))


def _describe_bad(chars: Iterable[str]) -> str:
    return ", ".join(f"{c!r} (U+{ord(c):04X})" for c in sorted(set(chars)))


class CharTokenizer:
    """Characters as CTC labels: ``<blank>`` 0, ``|`` (space) 1, then the other characters."""

    kind = "char"

    def __init__(self, tokens: Sequence[str] | None = None):
        tokens = list(DEFAULT_CHARS if tokens is None else tokens)
        if len(tokens) < 3 or tokens[0] != BLANK or tokens[1] != SPACE:
            raise TextError(f"a character token list must start with {BLANK!r}, {SPACE!r}; got {tokens[:3]}")
        if len(set(tokens)) != len(tokens):
            raise TextError("a character token list has a duplicate token")
        for t in tokens[2:]:
            if len(t) != 1 or t.isspace():
                raise TextError(f"character token {t!r} is not a single non-space character")
        self.tokens = tokens
        self.blank_id = 0
        self.space_id = 1
        self._index = {t: i for i, t in enumerate(tokens)}
        self._index[" "] = self.space_id

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @property
    def word_start_ids(self) -> frozenset[int]:
        """Char tokenizers mark word boundaries with ``space_id`` instead; empty."""
        return frozenset()

    def encode(self, text: str) -> list[int]:
        text = " ".join(text.split())
        bad = [c for c in text if c not in self._index]
        if bad:
            raise TextError(
                f"cannot encode {text!r}: character(s) {_describe_bad(bad)} not in the token list "
                "(normalise the text with asr.text.normalize_text or extend tokens.txt)"
            )
        return [self._index[c] for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        n = len(self.tokens)
        for i in ids:
            i = int(i)
            if i == self.blank_id:
                continue
            if not 0 <= i < n:
                raise TextError(f"token id {i} is out of range for a vocabulary of {n}")
            out.append(" " if i == self.space_id else self.tokens[i])
        return " ".join("".join(out).split())

    def save(self, path: str | os.PathLike) -> None:
        _write_tokens_txt(Path(path), self.tokens)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CharTokenizer":
        return cls(read_tokens_txt(Path(path)))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


class BPETokenizer:
    """Sentencepiece BPE pieces as CTC labels: ``<blank>`` 0, ``<unk>`` 1, pieces from id 2."""

    kind = "bpe"

    def __init__(self, model_proto: bytes, tokens: Sequence[str] | None = None):
        """From a sentencepiece model; ``tokens`` (as tokens.txt lists them) lets decoding work
        without sentencepiece, which is then loaded only when text is encoded."""
        self._proto = bytes(model_proto)
        self._sp_proc = None
        if tokens is None:
            tokens = [BLANK, UNK] + [self._sp.IdToPiece(i) for i in range(1, self._sp.GetPieceSize())]
        self.tokens = list(tokens)
        if len(self.tokens) < 3 or self.tokens[0] != BLANK or self.tokens[1] != UNK:
            raise TextError(f"a BPE token list must start with {BLANK!r}, {UNK!r}; got {self.tokens[:3]}")
        self.blank_id = 0
        self.unk_id = 1
        self.space_id = None
        self._alphabet = set()
        for p in self.tokens[2:]:
            self._alphabet.update(p.replace(WORD_START, ""))
        self._word_start = frozenset(i for i, p in enumerate(self.tokens) if p.startswith(WORD_START))

    @property
    def _sp(self):
        if self._sp_proc is None:
            try:
                import sentencepiece as spm
            except ImportError:
                raise TextError("encoding text into BPE pieces (training, hotwords, a lexicon) needs sentencepiece, "
                                "which this install lacks: pip install sentencepiece (decoding a BPE package "
                                "does not need it)") from None
            sp = spm.SentencePieceProcessor()
            try:
                sp.LoadFromSerializedProto(self._proto)
            except (RuntimeError, OSError) as e:
                raise TextError(f"not a valid sentencepiece model: {e}") from None
            if sp.unk_id() != 0:
                raise TextError("the sentencepiece model must have <unk> at id 0 and no bos/eos/pad")
            self._sp_proc = sp
        return self._sp_proc

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @property
    def word_start_ids(self) -> frozenset[int]:
        """Ids of pieces beginning with ``▁`` (i.e. that start a new word)."""
        return self._word_start

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, model_prefix: str | os.PathLike | None = None,
              *, character_coverage: float = 1.0, model_type: str = "bpe") -> "BPETokenizer":
        """Train on normalised ``texts``. ``vocab_size`` counts ``<blank>`` too.

        If ``model_prefix`` is given, the model is also written to ``<model_prefix>.model``.
        The vocabulary may come out smaller than asked on a tiny corpus (hard_vocab_limit off).
        """
        import sentencepiece as spm

        texts = [" ".join(t.split()) for t in texts]
        texts = [t for t in texts if t]
        if not texts:
            raise TextError("cannot train BPE: no non-empty texts")
        if vocab_size < 3:
            raise TextError(f"BPE vocab_size must be at least 3, got {vocab_size}")
        buf = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(texts),
                model_writer=buf,
                vocab_size=vocab_size - 1,
                model_type=model_type,
                character_coverage=character_coverage,
                unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,
                hard_vocab_limit=False,
                num_threads=1,
                minloglevel=2,
                train_extremely_large_corpus=False,
            )
        except RuntimeError as e:
            raise TextError(f"sentencepiece training failed: {e}") from None
        tok = cls(buf.getvalue())
        if model_prefix is not None:
            atomic_write_bytes(f"{os.fspath(model_prefix)}.model", tok._proto)
        return tok

    def encode(self, text: str) -> list[int]:
        text = " ".join(text.split())
        bad = [c for c in text if c != " " and c not in self._alphabet]
        if bad:
            raise TextError(
                f"cannot encode {text!r}: character(s) {_describe_bad(bad)} are not in the BPE model "
                "(normalise the text with asr.text.normalize_text or retrain the BPE model)"
            )
        return [i + 1 for i in self._sp.EncodeAsIds(text)]

    def decode(self, ids: Iterable[int]) -> str:
        n = len(self.tokens)
        pieces = []
        for i in ids:
            i = int(i)
            if i in (self.blank_id, self.unk_id):
                continue
            if not 0 <= i < n:
                raise TextError(f"token id {i} is out of range for a vocabulary of {n}")
            pieces.append(self.tokens[i])
        return " ".join("".join(pieces).replace(WORD_START, " ").split())

    def save(self, path: str | os.PathLike) -> None:
        """Write ``tokens.txt`` at ``path`` and the sentencepiece model as ``bpe.model`` beside it."""
        path = Path(path)
        atomic_write_bytes(path.parent / BPE_MODEL_NAME, self._proto)
        _write_tokens_txt(path, self.tokens)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BPETokenizer":
        """Load from ``tokens.txt`` (with ``bpe.model`` beside it) or from a ``.model`` file.
        With sentencepiece installed, tokens.txt is checked against the model."""
        path = Path(path)
        model = path if path.suffix == ".model" else path.parent / BPE_MODEL_NAME
        if not model.is_file():
            raise TextError(f"BPE model {model} does not exist")
        if path.suffix == ".model":
            return cls(model.read_bytes())
        tok = cls(model.read_bytes(), read_tokens_txt(path))
        try:
            import sentencepiece  # noqa: F401
        except ImportError:
            return tok  # decoding needs only the token list; encoding will say sentencepiece is missing
        if cls(tok._proto).tokens != tok.tokens:
            raise TextError(f"{path} does not match {model}; re-save the tokenizer")
        return tok

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


def load_tokenizer(path: str | os.PathLike) -> CharTokenizer | BPETokenizer:
    """Load ``tokens.txt`` (or a folder holding it): BPE if ``bpe.model`` lies beside it, else chars."""
    path = Path(path)
    if path.is_dir():
        path = path / "tokens.txt"
    if not path.is_file():
        raise TextError(f"token list {path} does not exist")
    if (path.parent / BPE_MODEL_NAME).is_file():
        return BPETokenizer.load(path)
    return CharTokenizer.load(path)


def copy_token_files(tokens_txt: str | os.PathLike, dest_dir: str | os.PathLike) -> None:
    """Copy ``tokens.txt`` (and ``bpe.model`` when it lies beside it) into ``dest_dir`` (an experiment
    or package), atomically; a ``bpe.model`` left in ``dest_dir`` by an earlier BPE run is removed when
    the token set is characters, so that :func:`load_tokenizer` of ``dest_dir`` reads what was given."""
    src, dest = Path(tokens_txt), Path(dest_dir)
    atomic_copy(src, dest / "tokens.txt")
    bpe = src.parent / BPE_MODEL_NAME
    if bpe.is_file():
        atomic_copy(bpe, dest / BPE_MODEL_NAME)
    else:
        (dest / BPE_MODEL_NAME).unlink(missing_ok=True)
