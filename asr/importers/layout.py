"""Corpus layout checks: one clear error naming what is missing and the layout that was expected."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from ..errors import ASRError


class CorpusLayoutError(ASRError):
    """A corpus folder that does not have the published layout (missing files or folders)."""


def layout_error(corpus: str, root: Path, missing: Sequence[str], expected: str, hint: str = "") -> CorpusLayoutError:
    """The error for ``missing`` items (shown at most 10) under ``root`` of ``corpus``."""
    shown = list(missing[:10])
    more = f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""
    msg = (f"{root} does not look like {corpus}: missing {', '.join(shown)}{more}.\n"
           f"Expected layout:\n{expected.rstrip()}")
    if hint:
        msg += f"\n{hint}"
    return CorpusLayoutError(msg)


def require(corpus: str, root: Path, paths: Iterable[str], expected: str, hint: str = "") -> None:
    """Raise one CorpusLayoutError listing every relative path in ``paths`` that does not exist."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusLayoutError(
            f"{root} is not a folder: pass the {corpus} folder with --corpus_dir (--corpus-dir).\n"
            f"Expected layout:\n{expected.rstrip()}" + (f"\n{hint}" if hint else ""))
    missing = [p for p in paths if not (root / p).exists()]
    if missing:
        raise layout_error(corpus, root, missing, expected, hint)
