"""Kaldi-style data dirs: read/write (:mod:`.datadir`), validate (:mod:`.validate`), subset, split,
combine, sort, fix (:mod:`.ops`), prepare (:mod:`.prepare`)."""
from .datadir import DataDir, Segment, read_kaldi_map, resolve_audio_path, write_kaldi_map
from .ops import combine, fix_datadir, sort_datadir, split, subset
from .prepare import prepare_datadir
from .validate import check_datadir, validate_datadir

__all__ = [
    "DataDir",
    "Segment",
    "read_kaldi_map",
    "write_kaldi_map",
    "resolve_audio_path",
    "validate_datadir",
    "check_datadir",
    "subset",
    "split",
    "combine",
    "sort_datadir",
    "fix_datadir",
    "prepare_datadir",
]
