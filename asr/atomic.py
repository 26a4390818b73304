"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A reader (or a rerun after SIGKILL) sees either the old file or the complete new one, never a
partial file. Temporary files are named ``.<name>.tmp-<pid>-<random>`` and removed on failure.

Permissions end as a plain ``open(path, "w")`` would leave them: a new file gets ``0666 & ~umask``
(0644 under the usual umask 022, so other users can read a model package or results), a rewritten
file keeps its mode; a folder from :func:`atomic_dir` gets ``0777 & ~umask``. (``tempfile.mkstemp``
would create every file 0600.)
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import ASRError


def check_output_dir(path: str | os.PathLike) -> None:
    """Refuse an output folder that cannot be made: ``path``, or the nearest of its parents that
    exists, is not a folder (an existing regular file given as ``--out``). Commands call it before
    their work, so the mistake is reported before a long run rather than after it."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                what = "is an existing file" if p == path else f"lies inside {p}, which is a file"
                raise ASRError(f"{path} {what}, not a folder: give a folder path for the output "
                               "(an existing folder, or one to create)")
            return


def _new_temp_file(path: Path) -> Path:
    """An empty ``.<name>.tmp-<pid>-<random>`` next to ``path`` with the mode ``open(path, "w")``
    would give: ``0666 & ~umask`` (applied by the kernel, as for open), or ``path``'s own mode when
    it exists."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(fd, stat.S_IMODE(os.stat(path).st_mode) & 0o777)
        finally:
            os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name next to {path}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``."""
    path = Path(path)
    check_output_dir(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_temp_file(path)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; on success it replaces ``path`` whole.

    A reader, or a rerun after a kill, sees the old folder or the complete new one: the old one is
    renamed aside, the new one renamed in, then the old one removed (a kill between the two renames
    leaves ``path`` missing and the old folder as ``.<name>.old-<pid>``, never a mixed folder).
    Temporaries that a killed writer left next to ``path`` are removed first. On an exception the
    temporary folder is removed and ``path`` is untouched. ``path`` must be a folder or not exist
    (:func:`check_output_dir`): an existing file is refused, not replaced.
    """
    path = Path(path)
    check_output_dir(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in [*path.parent.glob(f".{path.name}.tmp-*"), *path.parent.glob(f".{path.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy ``src`` onto ``dst`` atomically (a reader, or a rerun after a kill, never sees a partial copy)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def atomic_save(path: str | os.PathLike, writer: Callable[[io.BufferedWriter], None]) -> None:
    """Call ``writer(fileobj)`` on a temporary file, then rename it onto ``path``.

    Works for ``np.save(f, arr)``, ``torch.save(obj, f)`` and anything else that writes to a file
    object.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            writer(f)


def clean_stale_temps(folder: str | os.PathLike, names: Iterable[str] | None = None) -> int:
    """Remove temporary files left by a killed writer in ``folder``; returns how many.

    ``names``: only the temporaries of these file names (for a folder other stages write too).
    """
    n = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    patterns = [f".{name}.tmp-*" for name in names] if names is not None else [".*.tmp-*"]
    for p in (p for pattern in patterns for p in folder.glob(pattern)):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n
