"""Hotword and lexicon lists for the beam search: one entry syntax, the file readers, the API's
values, and the check against a model's token set.

A **hotword entry** is the same everywhere (a line of a ``--hotwords`` file, an item of
``decode.yaml``'s ``hotwords`` list, an item of the API's ``hotwords=[...]``)::

    PHRASE                 boost = decode.hotword_weight
    PHRASE BOOST           the last field is a number: the boost (transcripts spell numbers out)
    PHRASE<TAB>BOOST       the field after the last tab must be a number

``BOOST`` (>= 0) is the bonus per token of the phrase while the search spells it, kept only when
the whole phrase is spelled. Phrases are lower-cased with whitespace collapsed (as transcripts are);
every character must be in the model's token set. The API also takes ``{phrase: boost}``.

A **lexicon** lists the words the search may spell, one per line; a Kaldi-style ``word
pronunciation`` lexicon works too (the first column is the word). Kaldi's non-speech entries
(``<unk>``, ``[noise]``, ``!SIL``) are skipped. In files, blank lines and ``#`` comment lines are
skipped; a bad line is a :class:`~asr.errors.ConfigError` naming ``FILE:LINE``.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

from ..errors import ConfigError, TextError


class Hotword(NamedTuple):
    phrase: str  # lower-case words separated by single spaces
    boost: float | None  # bonus per token; None = the config's hotword_weight


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # a decimal number ("nan", "inf" are words)


def _number(s: str) -> float | None:
    return float(s) if _NUMBER.fullmatch(s) else None


def _hotword(phrase: str, boost: float | None, entry: str, where: str) -> Hotword:
    """A checked :class:`Hotword`: a phrase that is not empty, a boost that is finite and >= 0."""
    if boost is not None and not (math.isfinite(boost) and boost >= 0):
        raise ConfigError(f"{where}: boost {boost!r} of {phrase.strip()!r} must be a finite number >= 0")
    phrase = " ".join(phrase.lower().split())
    if not phrase:
        raise ConfigError(f"{where}: {entry.strip()!r} has no phrase (write 'PHRASE' or 'PHRASE BOOST')")
    if _number(phrase.split()[-1]) is not None:  # it would read back as a boost
        raise ConfigError(f"{where}: the phrase {phrase!r} ends in a number: spell it out, as transcripts do")
    return Hotword(phrase, boost)


def parse_hotword(entry: str, where: str) -> Hotword:
    """The :class:`Hotword` of one entry (see the module doc); ConfigError naming ``where``."""
    text = entry.strip()
    if "\t" in text:
        phrase, _, field = text.rpartition("\t")
        boost = _number(field.strip())
        if boost is None:
            raise ConfigError(f"{where}: the boost after the tab, {field.strip()!r}, is not a number "
                              "(write 'PHRASE<TAB>BOOST', e.g. 'kubernetes<TAB>3.0')")
    else:
        parts = text.split()
        boost = _number(parts[-1]) if parts else None
        phrase = " ".join(parts[:-1]) if boost is not None else text
    return _hotword(phrase, boost, entry, where)


def _entry(h: Hotword) -> str:
    """The canonical entry of ``h`` (parses back to ``h``)."""
    return h.phrase if h.boost is None else f"{h.phrase}\t{h.boost!r}"


def _lines(path: str | os.PathLike, what: str) -> Iterable[tuple[str, str]]:
    """(``FILE:LINE``, stripped text) of the lines of ``path`` that are neither blank nor comments."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} file {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} file {p} is not UTF-8 text ({e})") from None
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s and not s.startswith("#"):
            yield f"{p}:{n}", line.rstrip("\r\n")


def check_encodable(text: str, tokenizer, where: str, what: str) -> None:
    """ConfigError naming ``where`` if ``tokenizer`` cannot spell ``text`` (a hotword, a word)."""
    try:
        tokenizer.encode(text)
    except TextError as e:
        raise ConfigError(f"{where}: {what} {text!r} cannot be spelled with the model's tokens: {e}") from None


def read_hotwords(path: str | os.PathLike, tokenizer=None) -> tuple[str, ...]:
    """The entries of a hotwords file, canonical (``phrase`` or ``phrase<TAB>boost``); each phrase
    checked against ``tokenizer`` when one is given, so a bad line is named by ``FILE:LINE``."""
    out = []
    for where, line in _lines(path, "hotwords"):
        h = parse_hotword(line, where)
        if tokenizer is not None:
            check_encodable(h.phrase, tokenizer, where, "hotword")
        out.append(_entry(h))
    if not out:
        raise ConfigError(f"hotwords file {path} lists no phrase")
    return tuple(out)


def _is_nonspeech(word: str) -> bool:
    return word.startswith("!") or (word[0], word[-1]) in (("<", ">"), ("[", "]"))


def read_lexicon(path: str | os.PathLike, tokenizer=None) -> tuple[str, ...]:
    """The words of a lexicon file (first column, lower-cased, first occurrence kept), each checked
    against ``tokenizer`` when one is given."""
    words: dict[str, None] = {}
    for where, line in _lines(path, "lexicon"):
        word = line.split()[0].lower()
        if _is_nonspeech(word):
            continue
        if tokenizer is not None:
            check_encodable(word, tokenizer, where, "word")
        words.setdefault(word)
    if not words:
        raise ConfigError(f"lexicon file {path} lists no word")
    return tuple(words)


def hotword_entries(value, source: str = "hotwords") -> tuple[str, ...]:
    """Canonical entries from an API value: a list of entries (or of (phrase, boost) pairs), or a
    {phrase: boost} mapping."""
    if isinstance(value, (str, bytes, os.PathLike)):
        raise ConfigError(f"{source}: expected a list of phrases or a {{phrase: boost}} mapping, got {value!r} "
                          "(for a file, read it with asr.decode.hotwords.read_hotwords)")
    items = value.items() if isinstance(value, Mapping) else value
    out = []
    for i, item in enumerate(items):
        where = f"{source}[{i}]"
        if isinstance(item, str):
            h = parse_hotword(item, where)
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
            phrase, boost = item
            if boost is not None and (isinstance(boost, bool) or not isinstance(boost, (int, float))):
                raise ConfigError(f"{where}: boost {boost!r} of {phrase!r} is not a number")
            h = _hotword(phrase, None if boost is None else float(boost), phrase, where)
        else:
            raise ConfigError(f"{where}: expected a phrase or a (phrase, boost) pair, got {item!r}")
        out.append(_entry(h))
    return tuple(out)


def lexicon_entries(value, source: str = "lexicon") -> tuple[str, ...]:
    """Lexicon words from an API value (a list of words); an empty list is refused (it allows nothing)."""
    if isinstance(value, (str, bytes, os.PathLike)):
        raise ConfigError(f"{source}: expected a list of words, got {value!r} "
                          "(for a file, read it with asr.decode.hotwords.read_lexicon)")
    words: dict[str, None] = {}
    for i, w in enumerate(value):
        if not isinstance(w, str) or len(w.split()) != 1:
            raise ConfigError(f"{source}[{i}]: {w!r} is not one word")
        words.setdefault(w.strip().lower())
    if not words:
        raise ConfigError(f"{source}: an empty lexicon allows no word; leave it out for no constraint")
    return tuple(words)


def search_lists(hotwords: Iterable[str], lexicon: Iterable[str], tokenizer,
                 source: str) -> tuple[list[tuple[str, float | None]], list[str] | None]:
    """What the beam search takes from a config's ``hotwords`` and ``lexicon``: (phrase, boost)
    pairs and the word list (None = no constraint), every one checked against ``tokenizer``."""
    pairs = []
    for i, e in enumerate(hotwords):
        h = parse_hotword(e, f"{source} hotwords[{i}]")
        check_encodable(h.phrase, tokenizer, f"{source} hotwords[{i}]", "hotword")
        pairs.append((h.phrase, h.boost))
    words = list(lexicon)
    for i, w in enumerate(words):
        check_encodable(w, tokenizer, f"{source} lexicon[{i}]", "word")
    return pairs, (words or None)


# ---- the commands' --hotwords / --lexicon / --nbest (asr transcribe, asr decode, asr live)
def add_search_arguments(p) -> None:
    p.add_argument("--hotwords", metavar="FILE", default=None,
                   help="phrases to boost, one per line: 'PHRASE', 'PHRASE BOOST' or 'PHRASE<TAB>BOOST' (bonus per "
                        "token, default decode.hotword_weight); replaces decode.yaml's list; uses the beam search")
    p.add_argument("--lexicon", metavar="FILE", default=None,
                   help="allowed words, one per line (or the first column of a 'word pronunciation' lexicon); "
                        "replaces decode.yaml's list; uses the beam search")
    p.add_argument("--nbest", type=int, metavar="N", default=None,
                   help="hypotheses the beam search returns (decode.nbest); > 1 uses the beam search; "
                        "asr transcribe prints them with their scores")


def search_options(args, package_dir) -> dict:
    """Recognizer keywords from the options of :func:`add_search_arguments`, only those given; the
    files are checked against the tokens of ``package_dir``, so a bad line is named by ``FILE:LINE``."""
    out: dict = {}
    tokenizer = None
    if args.hotwords is not None or args.lexicon is not None:
        from ..package import check_package, load_package_tokenizer

        check_package(package_dir, verify_hashes=False)  # a missing or damaged package says so before its tokens are read
        tokenizer = load_package_tokenizer(package_dir)
    if args.hotwords is not None:
        out["hotwords"] = read_hotwords(args.hotwords, tokenizer)
    if args.lexicon is not None:
        out["lexicon"] = read_lexicon(args.lexicon, tokenizer)
    if args.nbest is not None:
        out["nbest"] = args.nbest
    return out
