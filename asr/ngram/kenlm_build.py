"""``asr build-kenlm``: compile KenLM's ``build_binary`` and ``query`` from its source release.

KenLM (LGPL) is not part of this repository: the sdist of the ``kenlm`` python module (the version
installed, else :data:`KENLM_VERSION`) is downloaded from the package index (or given with
``--sdist``) and its ``lm/`` and ``util/`` sources compiled with plain ``g++`` as KenLM's own
``compile_query_only.sh`` does (no Boost, no CMake), one file at a time. The programs land in
``~/.cache/asr/kenlm/bin`` (``$ASR_KENLM_DIR/bin``, or ``--prefix``); a rerun finds them and does
nothing. ``asr build-ngram --binary`` and the recipes' stage 11 find ``build_binary`` there (or on
``PATH``): see :func:`find_build_binary`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from ..atomic import atomic_path
from ..errors import ASRError

KENLM_VERSION = "0.3.0"  # the sdist built when the kenlm module is not installed
PROGRAMS = ("build_binary", "query")  # what is compiled (the two programs of compile_query_only.sh)
CXXFLAGS = ("-I.", "-O3", "-DNDEBUG", "-DKENLM_MAX_ORDER=6")  # compile_query_only.sh's flags
STAMP = "kenlm-version"  # file beside bin/ naming the source release the programs were built from


def kenlm_dir() -> Path:
    """The folder the programs are built into: ``$ASR_KENLM_DIR``, else ``~/.cache/asr/kenlm``."""
    env = os.environ.get("ASR_KENLM_DIR")
    return Path(env) if env else Path.home() / ".cache" / "asr" / "kenlm"


def find_build_binary(path: str | os.PathLike | None = None) -> Path:
    """KenLM's ``build_binary``: ``path`` when given, else the one ``asr build-kenlm`` compiled, else
    the one on ``PATH``. ASRError saying how to get it when there is none."""
    if path is not None:
        p = Path(path)
        if not (p.is_file() and os.access(p, os.X_OK)):
            raise ASRError(f"{p}: no such executable (KenLM's build_binary)")
        return p
    p = kenlm_dir() / "bin" / "build_binary"
    if p.is_file() and os.access(p, os.X_OK):
        return p
    found = shutil.which("build_binary")
    if found:
        return Path(found)
    raise ASRError(f"KenLM's build_binary is neither in {p.parent} nor on PATH: run `asr build-kenlm` "
                   "(compiles it from the kenlm source release with g++, a few minutes) or give --build-binary PATH")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("kenlm")
    except metadata.PackageNotFoundError:
        return KENLM_VERSION


def _index_url() -> str:
    """The package index pip is configured with (``PIP_INDEX_URL`` or ``pip config``), else PyPI."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        try:
            url = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                                 capture_output=True, text=True, timeout=60).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            url = ""
    return (url or "https://pypi.org/simple").rstrip("/")


def download_sdist(version: str, dest: Path) -> Path:
    """``kenlm-VERSION.tar.gz`` from the package index's JSON simple API (PEP 691) into ``dest``,
    checked against the sha256 the index lists. (``pip download --no-binary`` would first build the
    package's metadata, which needs CMake in an isolated build environment: minutes, or a hang.)"""
    name = f"kenlm-{version}.tar.gz"
    out = dest / name
    if out.is_file():
        return out
    index = _index_url()
    req = urllib.request.Request(f"{index}/kenlm/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            files = json.load(r)["files"]
        entry = next((f for f in files if f["filename"] == name), None)
        if entry is None:
            raise ASRError(f"{index}/kenlm/ lists no {name}: give the source with --sdist PATH")
        with urllib.request.urlopen(entry["url"], timeout=120) as r:
            data = r.read()
    except (OSError, ValueError, KeyError) as e:  # no network, or an index without the JSON API
        raise ASRError(f"cannot download {name} from {index} ({e}): download the kenlm source release "
                       "elsewhere and give it with --sdist PATH (the .tar.gz or its unpacked folder)") from None
    want = entry.get("hashes", {}).get("sha256")
    if want and hashlib.sha256(data).hexdigest() != want:
        raise ASRError(f"{entry['url']}: the download's sha256 is not the {want} the index lists; try again")
    dest.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(data)
    return out


def _unpack(sdist: Path, work: Path) -> Path:
    """The source folder of ``sdist`` (a folder already, or a .tar.gz unpacked into ``work``)."""
    if sdist.is_dir():
        src = sdist
    else:
        try:
            with tarfile.open(sdist) as tf:
                if hasattr(tarfile, "data_filter"):  # (Python >= 3.10.12 / 3.11.4: no paths outside `work`)
                    tf.extractall(work, filter="data")
                else:
                    tf.extractall(work)
        except (OSError, tarfile.TarError) as e:
            raise ASRError(f"{sdist}: not a readable kenlm source archive ({e})") from None
        tops = [p for p in work.iterdir() if p.is_dir()]
        src = tops[0] if len(tops) == 1 else work
    if not (src / "lm" / "build_binary_main.cc").is_file():
        raise ASRError(f"{sdist}: no lm/build_binary_main.cc in it; this is not the kenlm source release")
    return src


def build(prefix: Path | None = None, sdist: str | os.PathLike | None = None, cxx: str | None = None,
          force: bool = False, progress: bool = True) -> Path:
    """Compile ``build_binary`` and ``query`` into ``PREFIX/bin`` (default :func:`kenlm_dir`) and
    return that folder; nothing to do when they are there already (unless ``force``)."""
    prefix = Path(prefix) if prefix is not None else kenlm_dir()
    bindir = prefix / "bin"
    if not force and all((bindir / p).is_file() for p in PROGRAMS):
        return bindir
    cxx = cxx or os.environ.get("CXX") or "g++"
    if shutil.which(cxx) is None:
        raise ASRError(f"no C++ compiler {cxx!r} on PATH: install g++ (Debian: apt-get install g++) "
                       "or name one with --cxx / $CXX")
    version = _version()
    with tempfile.TemporaryDirectory(prefix="kenlm-build-") as tmp:
        work = Path(tmp)
        archive = Path(sdist) if sdist is not None else download_sdist(version, prefix / "src")
        if not archive.exists():
            raise ASRError(f"{archive}: no such kenlm source (.tar.gz or unpacked folder)")
        src = _unpack(archive, work / "src")
        sources = sorted(str(p.relative_to(src)) for d in ("util/double-conversion", "util", "lm")
                         for p in (src / d).glob("*.cc")
                         if not (p.name.endswith("test.cc") or p.name.endswith("main.cc")))
        objdir = work / "obj"
        objects = []
        from tqdm import tqdm

        for cc in tqdm(sources, desc="compiling kenlm", unit="file", disable=not progress):
            obj = objdir / (cc.replace("/", "_")[:-3] + ".o")
            obj.parent.mkdir(parents=True, exist_ok=True)
            _cxx([cxx, *CXXFLAGS, "-c", cc, "-o", str(obj)], src)
            objects.append(str(obj))
        bindir.mkdir(parents=True, exist_ok=True)
        for prog in PROGRAMS:
            with atomic_path(bindir / prog) as out:
                _cxx([cxx, f"lm/{prog}_main.cc", *objects, "-o", str(out), *CXXFLAGS, "-lrt"], src)
                os.chmod(out, 0o755)
        with atomic_path(prefix / STAMP) as out:
            Path(out).write_text(f"{archive.name}\n")
    return bindir


def _cxx(cmd: list[str], cwd: Path) -> None:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ASRError(f"compiling kenlm failed: {' '.join(cmd[:6])} ...\n{r.stderr[-3000:]}")


def add_arguments(p) -> None:
    p.add_argument("--prefix", default=None, help=f"install into PREFIX/bin (default {kenlm_dir()}; env ASR_KENLM_DIR)")
    p.add_argument("--sdist", default=None,
                   help="the kenlm source release (.tar.gz or unpacked folder) instead of downloading it")
    p.add_argument("--cxx", default=None, help="C++ compiler (default $CXX, else g++)")
    p.add_argument("--force", action="store_true", help="compile again even when the programs are there")


def run(args) -> int:
    bindir = build(Path(args.prefix) if args.prefix else None, sdist=args.sdist, cxx=args.cxx, force=args.force)
    print(f"KenLM programs: {', '.join(str(bindir / p) for p in PROGRAMS)}")
    return 0
