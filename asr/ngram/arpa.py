"""The ARPA text format of back-off n-gram LMs: the one reader and the one writer.

An ARPA file holds, per order n, lines ``log10 p(w | h)  h w  [log10 backoff(h w)]``, after a
``\\data\\`` header with the count of each order, and ends with ``\\end\\``. The reader checks the
header against the sections and names the file and line of any problem.
"""
from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..atomic import atomic_path
from ..errors import ASRError

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


@dataclass(frozen=True)
class ArpaGrams:
    """The n-grams of one order: words, log10 probabilities and log10 backoffs (0 where absent)."""

    order: int  # n
    grams: list[tuple[str, ...]]  # each n-gram's words, history first
    logp: list[float]  # log10 p(w | h)
    backoff: list[float]  # log10 backoff weight of the n-gram as a history (0.0 = none)


def read_arpa(path: str | os.PathLike, progress: bool = False) -> list[ArpaGrams]:
    """Every order of the ARPA file ``path`` (gzip-compressed when it ends in .gz), lowest first.
    ASRError for a malformed file."""
    path = Path(path)
    if not path.is_file():
        raise ASRError(f"{path}: no such ARPA file")
    counts: dict[int, int] = {}
    out: list[ArpaGrams] = []
    cur: ArpaGrams | None = None
    section = "start"
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"reading {path.name}")

    def bad(lineno: int, what: str) -> ASRError:
        return ASRError(f"{path}:{lineno}: {what}; this is not a well-formed ARPA file")

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if bar is not None:
                bar.update(len(line.encode("utf-8")))  # of the text (a .gz file's bar ends past 100 %)
            s = line.strip()
            if not s:
                continue
            if section == "start":
                if s == "\\data\\":
                    section = "data"
                continue  # text before \data\ is a comment
            if section == "data":
                if s.startswith("ngram "):
                    try:
                        n, c = s[6:].split("=")
                        counts[int(n)] = int(c)
                    except ValueError:
                        raise bad(lineno, f"bad count line {s!r}") from None
                    continue
                section = "grams"
            if s == "\\end\\":
                section = "end"
                break
            if s.startswith("\\") and s.endswith("-grams:"):
                try:
                    n = int(s[1:-7])
                except ValueError:
                    raise bad(lineno, f"bad section header {s!r}") from None
                if n != len(out) + 1 or n not in counts:
                    raise bad(lineno, f"section {s!r} out of order or missing from the header counts")
                cur = ArpaGrams(n, [], [], [])
                out.append(cur)
                continue
            if cur is None:
                raise bad(lineno, f"{s!r} before the first n-gram section")
            parts = s.split()
            n = cur.order
            if len(parts) not in (n + 1, n + 2):
                raise bad(lineno, f"a {n}-gram line needs log10 p, {n} words and an optional backoff, got {s!r}")
            try:
                lp = float(parts[0])
                bo = float(parts[n + 1]) if len(parts) == n + 2 else 0.0
            except ValueError:
                raise bad(lineno, f"non-numeric probability or backoff in {s!r}") from None
            if lp > 0 or math.isnan(lp) or math.isnan(bo):
                raise bad(lineno, f"log10 probability must be <= 0, got {s!r}")
            cur.grams.append(tuple(parts[1: n + 1]))
            cur.logp.append(lp)
            cur.backoff.append(bo)
    if bar is not None:
        bar.close()
    if section != "end":
        raise ASRError(f"{path}: no \\end\\ line (truncated?); this is not a well-formed ARPA file")
    if not out:
        raise ASRError(f"{path}: no n-gram sections")
    for g in out:
        if len(g.grams) != counts[g.order]:
            raise ASRError(f"{path}: the header says ngram {g.order}={counts[g.order]} but the "
                           f"\\{g.order}-grams: section has {len(g.grams)} lines")
    if set(counts) != set(range(1, len(out) + 1)):
        raise ASRError(f"{path}: the header counts orders {sorted(counts)} but the file has sections 1..{len(out)}")
    return out


def write_arpa(path: str | os.PathLike, orders: Sequence[ArpaGrams]) -> None:
    """Write ``orders`` (lowest first) as an ARPA file, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\\data\\\n")
        for g in orders:
            f.write(f"ngram {g.order}={len(g.grams)}\n")
        for g in orders:
            f.write(f"\n\\{g.order}-grams:\n")
            last = g.order == len(orders)
            for words, lp, bo in zip(g.grams, g.logp, g.backoff):
                line = f"{lp:.7g}\t{' '.join(words)}"
                if not last:
                    line += f"\t{bo:.7g}"
                f.write(line + "\n")
        f.write("\n\\end\\\n")


def sentences(lines: Iterable[str]) -> Iterable[list[str]]:
    """Whitespace-split words of each non-empty line."""
    for line in lines:
        words = line.split()
        if words:
            yield words
