"""Transcript normalisation and token sets (characters; sentencepiece BPE).

``normalize_text`` turns free text into the form every transcript in a data dir uses: lower-case
``[a-z' ]`` with single spaces, numbers spelled out (num2words), currency, percent, ordinals,
years and decimals read out, accents stripped, hyphens to spaces, other punctuation dropped and
apostrophes kept only inside words.

Tokenizers map normalised text to CTC label ids and back. Both kinds share one interface:
``tokens`` (list, id = index), ``blank_id`` (always 0), ``space_id``, ``vocab_size``,
``encode(text) -> list[int]`` (raises :class:`TextError` naming the characters it cannot encode),
``decode(ids) -> str`` (ids are collapsed CTC output; blanks are skipped anyway), ``save(path)``
(writes ``tokens.txt`` as ``token id`` lines) and ``load(path)``.

* :class:`CharTokenizer`: ``<blank>`` = 0, ``|`` (word boundary, i.e. a space) = 1, ``'``, ``a``..``z``.
* :class:`BPETokenizer`: ``<blank>`` = 0, ``<unk>`` = 1, then the sentencepiece pieces (id = sentencepiece
  id + 1). Words start with pieces beginning with ``▁``; there is no separate space token, so
  ``space_id`` is ``None`` and ``word_start_ids`` lists the ids of pieces that begin a word. ``save``
  writes ``tokens.txt`` and ``bpe.model`` beside it; :func:`load_tokenizer` picks the kind from
  whether ``bpe.model`` is there.
"""
from __future__ import annotations

import io
import os
import re
import unicodedata
from pathlib import Path
from typing import Iterable, Sequence

from num2words import num2words

from .atomic import atomic_write_bytes, atomic_write_text
from .errors import TextError

__all__ = [
    "normalize_text",
    "CharTokenizer",
    "BPETokenizer",
    "load_tokenizer",
    "BLANK",
    "SPACE",
]

BLANK = "<blank>"
SPACE = "|"
UNK = "<unk>"
BPE_MODEL_NAME = "bpe.model"

# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------

# letters NFKD does not decompose into ASCII + combining marks
_LETTER_MAP = {
    "ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th",
    "ı": "i", "ŋ": "ng", "ĳ": "ij",
}
# quotes and apostrophe look-alikes -> "'" (apostrophe) or '"' (dropped later)
_QUOTE_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
    "\u02bc": "'", "\u02b9": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"', "\u2033": '"',
}
# dashes and minus signs -> "-"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "sen", "sen"),
}
_SCALES = ("thousand", "million", "billion", "trillion")

_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_RE_CURRENCY = re.compile(
    r"([$£€¥])\s?(" + _NUM + r")(?:\s*(" + "|".join(_SCALES) + r")\b)?", re.IGNORECASE
)
_RE_PERCENT = re.compile(r"(" + _NUM + r")\s?%")
_RE_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_RE_DECADE = re.compile(r"(?<![\d.,])'?(\d*0)'?s\b")
_RE_YEAR = re.compile(r"(?<![\d.,])(1[1-9]\d\d|20\d\d)(?![\d%]|\.\d|,\d)")
_RE_NEGATIVE = re.compile(r"(?:(?<=\s)|^)-(?=\d)")
_RE_COMMA_NUM = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
_RE_DECIMAL = re.compile(r"\d*\.\d+")
_RE_INT = re.compile(r"\d+")
_RE_NOT_ALLOWED = re.compile(r"[^a-z' ]+")
_RE_EDGE_APOS = re.compile(r"(?<![a-z])'+|'+(?![a-z])")


def _words(s: str) -> str:
    """num2words output -> plain words: hyphens and commas become spaces."""
    return " " + re.sub(r"[-,]", " ", s) + " "


def _cardinal(digits: str) -> str:
    digits = digits.replace(",", "")
    if len(digits) > 1 and digits.startswith("0"):
        # "007" -> "zero zero seven": digit strings with a leading zero are read digit by digit
        return " ".join(num2words(int(d)) for d in digits)
    return num2words(int(digits))


def _number(text: str) -> str:
    """An integer or decimal literal (commas allowed) -> words."""
    text = text.replace(",", "")
    if "." in text:
        whole, frac = text.split(".", 1)
        head = num2words(int(whole)) if whole else "zero"
        return head + " point " + " ".join(num2words(int(d)) for d in frac)
    return _cardinal(text)


def _currency(m: re.Match) -> str:
    sym, amount, scale = m.group(1), m.group(2).replace(",", ""), m.group(3)
    one, many, sub_one, sub_many = _CURRENCIES[sym]
    if scale:  # "$5 million" -> "five million dollars"
        return _words(f"{_number(amount)} {scale.lower()} {many}")
    whole, _, frac = amount.partition(".")
    if len(frac) > 2:  # "$1.125" -> "one point one two five dollars"
        return _words(f"{_number(amount)} {many}")
    units = int(whole) if whole else 0
    cents = int(frac.ljust(2, "0")) if frac else 0
    parts = []
    if units or not cents:
        parts.append(f"{num2words(units)} {one if units == 1 else many}")
    if cents:
        parts.append(f"{num2words(cents)} {sub_one if cents == 1 else sub_many}")
    return _words(" ".join(parts))


def _fraction(m: re.Match) -> str:
    """Vulgar fractions (NFKC turns "½" into "1⁄2"): "one half", "three quarters", "two thirds"."""
    whole = f"{num2words(int(m.group(1)))} and " if m.group(1) else ""
    num, den = int(m.group(2)), int(m.group(3))
    if den == 0:
        return _words(f"{whole}{num2words(num)} {num2words(den)}")
    names = {2: ("half", "halves"), 4: ("quarter", "quarters")}
    one, many = names.get(den, (num2words(den, to="ordinal"), num2words(den, to="ordinal") + "s"))
    return _words(f"{whole}{num2words(num)} {one if num == 1 else many}")


def _year(y: int) -> str:
    return num2words(y, to="year")


def _decade(m: re.Match) -> str:
    """"1990s" -> "nineteen nineties", "80s"/"'80s" -> "eighties", "100s" -> "hundreds"."""
    digits = m.group(1)
    n = int(digits)
    if len(digits) == 4 and 1100 <= n <= 2099:
        words = _year(n)
    elif len(digits) == 3 and n % 100 == 0:
        words = num2words(n // 100) + " hundred" if n > 100 else "hundred"
    else:
        words = _cardinal(digits)
    w = re.sub(r"[-,]", " ", words).split()
    last = w[-1]
    w[-1] = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return " " + " ".join(w) + " "


def _strip_accents(s: str) -> str:
    s = "".join(_LETTER_MAP.get(c, c) for c in s)
    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if not unicodedata.combining(c))


def normalize_text(s: str) -> str:
    """Normalise a transcript to lower-case ``[a-z' ]`` words separated by single spaces.

    Steps: NFKC; unicode quotes/dashes to ASCII; lower-case; currency ("$5.50" -> "five dollars fifty
    cents", "$2 million" -> "two million dollars"); vulgar fractions ("½" -> "one half"); percent ("25%" -> "twenty five percent"); ordinals
    ("3rd" -> "third"); decades/plurals ("1990s" -> "nineteen nineties", "'80s" -> "eighties"); four-digit numbers 1100-2099 not
    part of a larger number read as years ("1990" -> "nineteen ninety"); a minus sign before a number
    -> "minus"; decimals ("3.14" -> "three point one four"); other integers as cardinals (commas as
    thousands separators; leading zeros read digit by digit); "&" -> "and"; accents stripped;
    hyphens and other punctuation to spaces; apostrophes kept only between letters ("don't",
    "o'brien"); whitespace collapsed. Characters outside a-z after all this are dropped.
    """
    if not isinstance(s, str):
        raise TypeError(f"normalize_text expects str, got {type(s).__name__}")
    # keep a vulgar fraction apart from a preceding digit: "2¾" -> "2 ¾" (NFKC would give "23⁄4")
    s = "".join(f" {c}" if unicodedata.category(c) == "No" and "\u2044" in unicodedata.normalize("NFKC", c)
                else c for c in s)
    s = unicodedata.normalize("NFKC", s)
    s = "".join(_QUOTE_MAP.get(c, c) for c in s)
    for d in _DASHES:
        s = s.replace(d, "-")
    s = s.lower()
    s = re.sub(r"(?:(\d+)\s+)?(\d+)\s*\u2044\s*(\d+)", _fraction, s)
    s = _RE_CURRENCY.sub(_currency, s)
    s = _RE_PERCENT.sub(lambda m: _words(_number(m.group(1)) + " percent"), s)
    s = _RE_ORDINAL.sub(lambda m: _words(num2words(int(m.group(1)), to="ordinal")), s)
    s = _RE_DECADE.sub(_decade, s)
    s = _RE_YEAR.sub(lambda m: _words(_year(int(m.group(1)))), s)
    s = _RE_NEGATIVE.sub(" minus ", s)
    s = _RE_COMMA_NUM.sub(lambda m: _words(_cardinal(m.group(0))), s)
    s = _RE_DECIMAL.sub(lambda m: _words(_number(m.group(0))), s)
    s = _RE_INT.sub(lambda m: _words(_cardinal(m.group(0))), s)
    s = s.replace("&", " and ")
    s = _strip_accents(s).lower()
    s = _RE_NOT_ALLOWED.sub(" ", s)
    s = _RE_EDGE_APOS.sub(" ", s)
    return " ".join(s.split())


# ---------------------------------------------------------------------------------------------
# tokenizers
# ---------------------------------------------------------------------------------------------

DEFAULT_CHARS = [BLANK, SPACE, "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]


def _read_tokens_txt(path: Path) -> list[str]:
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
        return cls(_read_tokens_txt(Path(path)))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


class BPETokenizer:
    """Sentencepiece BPE pieces as CTC labels: ``<blank>`` 0, ``<unk>`` 1, pieces from id 2."""

    kind = "bpe"

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self._proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(self._proto)
        except Exception as e:  # noqa: BLE001 - sentencepiece raises RuntimeError/OSError
            raise TextError(f"not a valid sentencepiece model: {e}") from None
        n = self._sp.GetPieceSize()
        if self._sp.unk_id() != 0:
            raise TextError("the sentencepiece model must have <unk> at id 0 and no bos/eos/pad")
        self.tokens = [BLANK, UNK] + [self._sp.IdToPiece(i) for i in range(1, n)]
        self.blank_id = 0
        self.unk_id = 1
        self.space_id = None
        self._alphabet = set()
        for p in self.tokens[2:]:
            self._alphabet.update(p.replace("\u2581", ""))
        self._word_start = frozenset(i for i, p in enumerate(self.tokens) if p.startswith("\u2581"))

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
        return " ".join("".join(pieces).replace("\u2581", " ").split())

    def save(self, path: str | os.PathLike) -> None:
        """Write ``tokens.txt`` at ``path`` and the sentencepiece model as ``bpe.model`` beside it."""
        path = Path(path)
        atomic_write_bytes(path.parent / BPE_MODEL_NAME, self._proto)
        _write_tokens_txt(path, self.tokens)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BPETokenizer":
        """Load from ``tokens.txt`` (with ``bpe.model`` beside it) or from a ``.model`` file."""
        path = Path(path)
        model = path if path.suffix == ".model" else path.parent / BPE_MODEL_NAME
        if not model.is_file():
            raise TextError(f"BPE model {model} does not exist")
        tok = cls(model.read_bytes())
        if path.suffix != ".model" and path.is_file():
            listed = _read_tokens_txt(path)
            if listed != tok.tokens:
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


def build_char_tokenizer(texts: Iterable[str]) -> CharTokenizer:
    """A character tokenizer over the characters in ``texts`` (default a-z set plus any extra)."""
    chars = set()
    for t in texts:
        chars.update(c for c in t if not c.isspace())
    extra = sorted(chars - set(DEFAULT_CHARS))
    return CharTokenizer(DEFAULT_CHARS + extra)

