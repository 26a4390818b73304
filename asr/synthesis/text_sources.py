"""Sentences for the synthetic corpus and the LM, from public-domain text shipped in packages.

Sources (each optional; missing ones are skipped with a note):
- ``fortunes``: Debian ``fortunes``/``fortunes-min`` (``/usr/share/games/fortunes``, ~458k words).
- ``lee``: gensim's ``lee_background.cor`` + ``lee.cor`` (news, ~64k words), extracted from the
  gensim wheel (``pip download --no-deps gensim``) once and cached under the recipe's ``db/text``.

A sentence is kept when it is a complete sentence (capital first, ``.!?`` last), has 4-20 words,
no digits, no all-caps words (acronyms a TTS engine may spell out), no abbreviations, and only
plain ASCII letters and ordinary punctuation. The TTS engines read the cleaned original sentence
(punctuation gives them prosody); the transcript is ``normalize_text`` of it, so the words spoken
and the words written agree.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence
from ..errors import ConfigError

FORTUNES_DIR = "/usr/share/games/fortunes"
GENSIM_VERSION = "4.4.0"
LEE_FILES = ("lee_background.cor", "lee.cor")

MIN_WORDS = 4
MAX_WORDS = 20

_ALLOWED = re.compile(r"^[A-Za-z ,.;:!?'\"()\-]+$")
_SENT_SPLIT = re.compile(r"(?<=[.!?])[\"')]*\s+(?=[\"'(]?[A-Z])")
_ABBREV = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "prof", "gen", "col", "capt", "lt",
    "sgt", "rev", "hon", "inc", "ltd", "co", "corp", "dept", "univ", "no", "mt", "ft", "gov",
    "sen", "rep", "ave", "blvd", "approx", "fig", "vol", "ch", "pp", "eg", "ie", "cf", "al",
}
# titles an engine expands ("Mr" -> "mister") while the transcript would keep "mr"
_ABBREV_ALWAYS = {"mr", "mrs", "ms", "dr", "jr", "sr", "vs", "etc", "prof", "capt", "lt", "sgt", "eg", "ie"}


def normalize(s: str) -> str:
    """``asr.text.normalize_text`` (output only ``[a-z' ]``); a minimal stand-in if it is absent."""
    try:
        from asr.text import normalize_text
    except ImportError:  # pragma: no cover - only before asr/text.py exists
        return _fallback_normalize(s)
    return normalize_text(s)


def _fallback_normalize(s: str) -> str:
    import unicodedata

    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    s = s.replace("-", " ")
    s = re.sub(r"[^a-z' ]", " ", s)
    words = [w.strip("'") for w in s.split()]
    return " ".join(w for w in words if w)


@dataclass(frozen=True)
class Sentence:
    """``spoken``: what the TTS engine reads; ``text``: the normalised transcript."""

    spoken: str
    text: str
    source: str


def split_sentences(paragraph: str) -> list[str]:
    paragraph = re.sub(r"\s+", " ", paragraph).strip()
    if not paragraph:
        return []
    return [s.strip() for s in _SENT_SPLIT.split(paragraph) if s.strip()]


def clean_sentence(s: str) -> str | None:
    """The sentence with tidied punctuation, or None when it should not be used."""
    s = s.strip().replace("`", "'").replace("''", '"')
    s = re.sub(r"\s+", " ", s)
    s = re.sub(r"^[\"'(]+", "", s)
    s = re.sub(r"[\"')]+$", "", s)
    if not s or not _ALLOWED.match(s):
        return None
    if not s[0].isupper() or s[-1] not in ".!?":
        return None
    if "..." in s or "--" in s and s.count("--") > 2:
        return None
    for w in re.findall(r"[A-Za-z'.]+", s):
        letters = re.sub(r"[^A-Za-z]", "", w)
        if len(letters) >= 2 and letters.isupper():
            return None  # acronym or shouting: engines may spell it out
        low = letters.lower()
        if (low in _ABBREV and w.endswith(".")) or low in _ABBREV_ALWAYS:
            return None
        if re.search(r"[a-z][A-Z]", letters):
            return None  # camelCase / code
    # a lone single letter other than a/I/o is usually a variable or an initial
    for w in re.findall(r"(?<![A-Za-z'])[A-Za-z](?![A-Za-z'])", s):
        if w not in ("a", "A", "I", "O", "o"):
            return None
    return s


def make_sentence(raw: str, source: str) -> Sentence | None:
    spoken = clean_sentence(raw)
    if spoken is None:
        return None
    text = normalize(spoken)
    n = len(text.split())
    if n < MIN_WORDS or n > MAX_WORDS:
        return None
    if not re.fullmatch(r"[a-z' ]+", text) or any(len(w) > 20 for w in text.split()):
        return None
    return Sentence(spoken=spoken, text=text, source=source)


# ---------------------------------------------------------------------------------------- sources
def fortune_paragraphs(folder: str | os.PathLike = FORTUNES_DIR) -> Iterator[tuple[str, str]]:
    """(paragraph, source) for every fortune, attributions removed; skips .dat/.u8 files."""
    files = sorted(f for f in glob.glob(os.path.join(str(folder), "*"))
                   if os.path.isfile(f) and not f.endswith((".dat", ".u8")))
    for f in files:
        raw = Path(f).read_bytes()
        try:
            data = raw.decode("utf-8")
        except UnicodeDecodeError:
            data = raw.decode("latin-1")
        name = os.path.basename(f)
        for entry in re.split(r"^%\s*$", data, flags=re.M):
            lines = []
            for line in entry.splitlines():
                if re.match(r"^\s*--\s", line) or re.match(r"^\s*--\w", line):
                    break  # attribution: everything after is source info
                lines.append(line)
            para = " ".join(l.strip() for l in lines)
            if para:
                yield para, f"fortunes/{name}"


def ensure_lee_corpus(cache_dir: str | os.PathLike, quiet: bool = False) -> list[Path]:
    """Paths of the cached Lee corpus files, downloading the gensim wheel once if needed.

    Returns [] (and says why on stderr) when pip cannot fetch it; the corpus then uses the other
    sources only.
    """
    cache = Path(cache_dir)
    paths = [cache / n for n in LEE_FILES]
    if all(p.is_file() and p.stat().st_size > 0 for p in paths):
        return paths
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gensim-wheel-"))
    try:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
               f"gensim=={GENSIM_VERSION}", "-d", str(tmp)]
        if not quiet:
            print(f"text sources: fetching gensim {GENSIM_VERSION} wheel for lee_background.cor", file=sys.stderr)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        wheels = list(tmp.glob("gensim-*.whl"))
        if r.returncode != 0 or not wheels:
            print(f"text sources: gensim wheel not available ({r.stderr.strip()[-200:]}); "
                  "using the other sources only", file=sys.stderr)
            return []
        with zipfile.ZipFile(wheels[0]) as z:
            for p in paths:
                data = z.read(f"gensim/test/test_data/{p.name}")
                from asr.atomic import atomic_write_bytes

                atomic_write_bytes(p, data)
        return paths
    except (OSError, KeyError, subprocess.TimeoutExpired, zipfile.BadZipFile) as e:
        print(f"text sources: could not extract the Lee corpus ({e}); using the other sources only",
              file=sys.stderr)
        return []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def lee_paragraphs(paths: Iterable[Path]) -> Iterator[tuple[str, str]]:
    for p in paths:
        for line in Path(p).read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                yield line, f"lee/{p.name}"


def _pool_key(sources: Sequence[str], cache_dir: Path, fortunes_dir: str | os.PathLike) -> str:
    """Identifies a sentence pool: the source files (name, size, mtime) and the cleaning code."""
    files: list[Path] = []
    if "fortunes" in sources and os.path.isdir(fortunes_dir):
        files += sorted(Path(fortunes_dir).glob("*"))
    if "lee" in sources:
        files += [cache_dir / n for n in LEE_FILES]
    stat = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]
    code = [hashlib.sha1(Path(m.__file__).read_bytes()).hexdigest() for m in (sys.modules[__name__], _text_module())
            if m is not None and getattr(m, "__file__", None)]
    blob = json.dumps([list(sources), MIN_WORDS, MAX_WORDS, stat, code])
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _text_module():
    try:
        import asr.text as t
    except ImportError:  # pragma: no cover
        return None
    return t


def load_sentences(sources: Iterable[str] = ("fortunes", "lee"), cache_dir: str | os.PathLike | None = None,
                   fortunes_dir: str | os.PathLike = FORTUNES_DIR) -> list[Sentence]:
    """All usable sentences, deduplicated on the normalised text, in a stable order.

    With ``cache_dir`` the pool is cached there as ``sentences-<key>.jsonl`` (key: source files and
    the cleaning/normalising code), so later runs skip the cleaning.
    """
    sources = list(sources)
    cache_file = None
    if cache_dir is not None:
        if "lee" in sources:
            ensure_lee_corpus(cache_dir)
        cache = Path(cache_dir)
        cache_file = cache / f"sentences-{_pool_key(sources, cache, fortunes_dir)}.jsonl"
        if cache_file.is_file():
            return [Sentence(**json.loads(line)) for line in cache_file.read_text(encoding="utf-8").splitlines()]
    out = _load_sentences(sources, cache_dir, fortunes_dir)
    if cache_file is not None and out:
        from asr.atomic import atomic_write_text

        for old in cache_file.parent.glob("sentences-*.jsonl"):
            old.unlink()
        atomic_write_text(cache_file, "".join(json.dumps(asdict(x)) + "\n" for x in out))
    return out


def _load_sentences(sources: Sequence[str], cache_dir: str | os.PathLike | None,
                    fortunes_dir: str | os.PathLike) -> list[Sentence]:
    seen: set[str] = set()
    out: list[Sentence] = []

    def paragraphs() -> Iterator[tuple[str, str]]:
        for src in sources:
            if src == "fortunes":
                if not os.path.isdir(fortunes_dir):
                    print(f"text sources: {fortunes_dir} missing (apt install fortunes fortunes-min); skipped",
                          file=sys.stderr)
                    continue
                yield from fortune_paragraphs(fortunes_dir)
            elif src == "lee":
                if cache_dir is None:
                    continue
                yield from lee_paragraphs(ensure_lee_corpus(cache_dir))
            else:
                raise ConfigError(f"unknown text source {src!r} (known: fortunes, lee)")

    for para, src in paragraphs():
        for raw in split_sentences(para):
            s = make_sentence(raw, src)
            if s is None or s.text in seen:
                continue
            seen.add(s.text)
            out.append(s)
    return out
