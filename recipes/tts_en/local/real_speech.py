#!/usr/bin/env python3
"""Real-human-speech dev set for tts_en: ``data/real_dev`` from recordings shipped in Debian/PyPI packages.

A dev set to choose models and settings on human voices, never to train on; the sources are
listed in ``asr/corpora/real_speech.py``. Defaults put everything in this recipe's folders:
``data/real_dev`` (data dir), ``db/real_speech`` (16 kHz WAV copies), ``db/real_speech_src``
(downloaded sdists). Missing Debian packages (pocketsphinx-testdata, alsa-utils) are installed
with apt-get as root or through password-less sudo, like ``make deps``; ``--no-install-apt``
skips that. A source that cannot be had is skipped with a note. Other options (``--sources``,
``--no-fetch``, or another ``--out``) are those of ``python -m asr.corpora.real_speech``.

    python local/real_speech.py [--out data/real_dev] [--sources pocketsphinx,alsa,...]
"""
from __future__ import annotations

import sys
from pathlib import Path

RECIPE = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    from asr.corpora.real_speech import main as prepare

    argv = list(sys.argv[1:] if argv is None else argv)
    install = "--no-install-apt" not in argv
    defaults = ["--out", str(RECIPE / "data" / "real_dev"), "--wav-dir", str(RECIPE / "db" / "real_speech"),
                "--cache", str(RECIPE / "db" / "real_speech_src")] + (["--install-apt"] if install else [])
    return prepare(defaults + [a for a in argv if a != "--no-install-apt"], prog="local/real_speech.py")


if __name__ == "__main__":
    raise SystemExit(main())
