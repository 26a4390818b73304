"""Exceptions the toolkit raises for problems a user can fix.

Every message names the file, utterance or setting at fault and says what to do. The CLI prints
these without a traceback and exits non-zero; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class ASRError(Exception):
    """Base class: a user-facing error whose message names the item and the fix."""


class AudioError(ASRError):
    """Audio that is missing, unreadable, empty, non-finite or otherwise unusable."""


class DataDirError(ASRError):
    """A malformed Kaldi-style data directory (one message may list many problems)."""


class TextError(ASRError):
    """A transcript that cannot be normalised or tokenised."""


class ConfigError(ASRError):
    """A configuration file or override with unknown keys or wrong types."""


class CheckpointError(ASRError):
    """A checkpoint that is missing, truncated, corrupt or of the wrong version."""


class ModelPackageError(ASRError):
    """A model package folder that is incomplete, tampered with or of an unknown format."""
