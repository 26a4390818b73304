"""Transcript normalisation (and, re-exported from :mod:`asr.tokens`, the token sets).

``normalize_text`` turns free text into the form every transcript in a data dir uses: lower-case
``[a-z' ]`` with single spaces, numbers spelled out (num2words), currency, percent, ordinals,
years and decimals read out, accents stripped, hyphens to spaces, other punctuation dropped and
apostrophes kept only inside words.

Token sets (:class:`CharTokenizer`, :class:`BPETokenizer`, :func:`load_tokenizer`) live in
:mod:`asr.tokens` and are re-exported here.
"""
from __future__ import annotations

import re
import unicodedata

from num2words import num2words

from .tokens import BLANK, SPACE, BPETokenizer, CharTokenizer, load_tokenizer  # noqa: F401 (re-exported)

__all__ = [
    "normalize_text",
    "CharTokenizer",
    "BPETokenizer",
    "load_tokenizer",
    "BLANK",
    "SPACE",
]


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
