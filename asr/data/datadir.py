"""Kaldi-style data directories.

A data dir is a folder of plain-text maps, one ``<id> <value>`` per line, sorted by id
(bytewise, i.e. ``LC_ALL=C sort``):

``wav.scp``   ``<utt> <audio path>`` (or ``<recording> <audio path>`` when ``segments`` exists)
``text``      ``<utt> <normalised transcript>``
``utt2spk``   ``<utt> <speaker>`` (use ``<utt> <utt>`` when speakers are unknown)
``segments``  optional, ``<utt> <recording> <start-seconds> <end-seconds>`` (end ``-1``: to the end)
``utt2dur``   derived, ``<utt> <seconds>``          ``spk2utt``  derived, ``<speaker> <utt> <utt> ...``
``feats.scp`` / ``utt2num_frames``  written by feature extraction.

Audio paths: absolute paths are used as they are. A relative path is looked up relative to the
current directory first (Kaldi recipes write paths relative to the recipe folder they run in),
then relative to the data dir itself. Kaldi pipe entries (``sph2pipe ... |``) and ark offsets are
not supported: write the audio to files and list those.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..atomic import atomic_write_text
from ..errors import AudioError, DataDirError

WAV_SCP, TEXT, UTT2SPK, SPK2UTT, SEGMENTS = "wav.scp", "text", "utt2spk", "spk2utt", "segments"
UTT2DUR, FEATS_SCP, UTT2NUM_FRAMES = "utt2dur", "feats.scp", "utt2num_frames"

PIPE_HINT = (
    "Kaldi pipe commands are not supported; write the audio to files (e.g. `sox`/`ffmpeg`/`sph2pipe` "
    "into .wav or .flac) and list the file paths in wav.scp"
)


@dataclass(frozen=True)
class Segment:
    recording: str
    start: float
    end: float  # seconds; -1 (any negative value) means "to the end of the recording"

    @property
    def duration(self) -> float | None:
        return None if self.end < 0 else self.end - self.start


def format_float(x: float) -> str:
    """Shortest fixed-point text for a time in seconds (up to 6 decimals)."""
    s = f"{x:.6f}".rstrip("0").rstrip(".")
    return s if s not in ("", "-0") else "0"


# --------------------------------------------------------------------------------------------
# Plain maps


def _read_text_file(path: Path, problems: list[str] | None, fname: str) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        lineno = data.count(b"\n", 0, e.start) + 1
        line = data[data.rfind(b"\n", 0, e.start) + 1:].split(b"\n", 1)[0]
        key = line.split(maxsplit=1)[0].decode("utf-8", errors="replace") if line.split() else ""
        what = f":{lineno}: id '{key}'" if key else f":{lineno}"
        fix = "re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
        if problems is None:
            raise DataDirError(f"{path}{what}: not valid UTF-8 (byte {e.start}); {fix}") from None
        problems.append(f"{fname}{what}: not valid UTF-8 (byte {e.start}); {fix}")
        return data.decode("utf-8", errors="replace")


def parse_kaldi_lines(
    path: str | os.PathLike, problems: list[str], fname: str | None = None, *, allow_empty_value: bool = False
) -> dict[str, tuple[int, str]]:
    """Parse ``<key> <rest of line>`` lines into ``{key: (line_number, value)}`` in file order.

    Blank lines, keys without a value (unless ``allow_empty_value``) and duplicate keys are
    appended to ``problems`` (``"<fname>:<line>: ..."``) and skipped.
    """
    path = Path(path)
    fname = fname or path.name
    out: dict[str, tuple[int, str]] = {}
    # lines end at "\n" only (as in Kaldi): str.splitlines() would also split a transcript at
    # U+2028, U+0085, form feeds, ...
    lines = _read_text_file(path, problems, fname).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            problems.append(f"{fname}:{lineno}: blank line; delete it")
            continue
        parts = line.split(maxsplit=1)
        key = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        if key in out:
            problems.append(
                f"{fname}:{lineno}: duplicate id '{key}' (first on line {out[key][0]}); keep one line per id"
            )
            continue
        if not value and not allow_empty_value:
            problems.append(f"{fname}:{lineno}: id '{key}' has no value; expected '<id> <value>' on each line")
            continue
        out[key] = (lineno, value)
    return out


def read_kaldi_map(path: str | os.PathLike) -> dict[str, str]:
    """Read ``<key> <rest of line>`` lines into an ordered dict (file order).

    A key alone on a line maps to ``""``. Blank lines are skipped. Raises DataDirError for a
    missing file or duplicate keys (naming the lines).
    """
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path} not found")
    problems: list[str] = []
    parsed = parse_kaldi_lines(path, problems, str(path), allow_empty_value=True)
    problems = [p for p in problems if "blank line" not in p]
    if problems:
        raise DataDirError("\n".join(problems))
    return {k: v for k, (_, v) in parsed.items()}


def kaldi_map_text(mapping: Mapping[str, object]) -> str:
    lines = []
    for k in sorted(mapping):
        v = str(mapping[k])
        if not k or any(c.isspace() for c in k) or "\n" in v or "\r" in v:
            raise DataDirError(f"cannot write id {k!r} with value {v!r} as a Kaldi map line: ids must be non-empty "
                               "without whitespace and values on one line")
        lines.append(f"{k} {v}" if v else k)
    return "".join(line + "\n" for line in lines)


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file():
        try:
            if path.read_text(encoding="utf-8") == text:
                return False
        except UnicodeDecodeError:
            pass
    atomic_write_text(path, text)
    return True


def write_kaldi_map(path: str | os.PathLike, mapping: Mapping[str, object]) -> None:
    """Write ``mapping`` as ``<key> <value>`` lines sorted by key, atomically.

    An unchanged file is not rewritten (its mtime is kept).
    """
    _write_if_changed(Path(path), kaldi_map_text(mapping))


def is_pipe(value: str) -> bool:
    return value.rstrip().endswith("|")


def resolve_audio_path(value: str, data_dir: str | os.PathLike) -> Path:
    """Resolve a wav.scp path: absolute as is; relative: current directory first, then the data dir.

    When neither exists the current-directory path is returned (the caller reports it missing).
    """
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists():
        return p
    q = Path(data_dir) / p
    return q if q.exists() else p


# --------------------------------------------------------------------------------------------
# Parsing a whole data dir (shared by DataDir.load and the validator)


@dataclass
class ParsedDataDir:
    """Raw parse of a data dir: per file ``{key: (line, value)}`` plus the problems found."""

    path: Path
    files: dict[str, dict[str, tuple[int, str]]] = field(default_factory=dict)
    segments: dict[str, Segment] | None = None
    utt2dur: dict[str, float] | None = None
    utt2num_frames: dict[str, int] | None = None
    problems: list[str] = field(default_factory=list)

    def line(self, fname: str, key: str) -> int | None:
        entry = self.files.get(fname, {}).get(key)
        return entry[0] if entry else None


def parse_datadir(path: str | os.PathLike, *, require_text: bool = False) -> ParsedDataDir:
    """Parse every known file of a data dir, collecting structural problems (never raises)."""
    path = Path(path)
    pd = ParsedDataDir(path=path)
    P = pd.problems
    if not path.exists():
        P.append(f"data dir {path} does not exist")
        return pd
    if not path.is_dir():
        P.append(f"{path} is not a directory; a data dir is a folder holding wav.scp, text and utt2spk")
        return pd
    required = [WAV_SCP, UTT2SPK] + ([TEXT] if require_text else [])
    for fname in required:
        if not (path / fname).is_file():
            hint = {
                WAV_SCP: "one '<utt-id> <audio path>' line per utterance",
                UTT2SPK: "one '<utt-id> <speaker-id>' line per utterance ('<utt-id> <utt-id>' if speakers are unknown)",
                TEXT: "one '<utt-id> <transcript>' line per utterance",
            }[fname]
            P.append(f"{fname}: required file missing; create {path / fname} with {hint}")
    for fname in (WAV_SCP, TEXT, UTT2SPK, SPK2UTT, SEGMENTS, UTT2DUR, FEATS_SCP, UTT2NUM_FRAMES):
        fpath = path / fname
        if fpath.is_file():
            pd.files[fname] = parse_kaldi_lines(fpath, P, fname, allow_empty_value=(fname == TEXT))
        elif fpath.exists():
            P.append(f"{fname}: {fpath} is not a regular file")

    for key, (ln, value) in pd.files.get(WAV_SCP, {}).items():
        if is_pipe(value):
            P.append(f"{WAV_SCP}:{ln}: '{key}': '{value}' is a pipe command; {PIPE_HINT}")
        elif ".ark:" in value and value.rsplit(":", 1)[-1].isdigit():
            P.append(
                f"{WAV_SCP}:{ln}: '{key}': '{value}' is a Kaldi archive offset, which is not supported; "
                "write each utterance's audio to its own file"
            )
    for key, (ln, value) in pd.files.get(UTT2SPK, {}).items():
        if len(value.split()) != 1:
            P.append(f"{UTT2SPK}:{ln}: utt '{key}': expected '<utt-id> <speaker-id>', got '{key} {value}'")
    if SEGMENTS in pd.files:
        pd.segments = {}
        for key, (ln, value) in pd.files[SEGMENTS].items():
            parts = value.split()
            if len(parts) != 3:
                P.append(
                    f"{SEGMENTS}:{ln}: utt '{key}': expected '<utt-id> <recording-id> <start> <end>', "
                    f"got '{key} {value}'"
                )
                continue
            try:
                start, end = float(parts[1]), float(parts[2])
            except ValueError:
                P.append(f"{SEGMENTS}:{ln}: utt '{key}': start/end '{parts[1]} {parts[2]}' are not numbers (seconds)")
                continue
            if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or (end >= 0 and end <= start):
                P.append(
                    f"{SEGMENTS}:{ln}: utt '{key}': bad times start={parts[1]} end={parts[2]}; need 0 <= start < end "
                    "(or end = -1 for 'to the end')"
                )
                continue
            pd.segments[key] = Segment(parts[0], start, end)
    if UTT2DUR in pd.files:
        pd.utt2dur = _numbers(pd.files[UTT2DUR], UTT2DUR, float, lambda d: bool(np.isfinite(d)) and d > 0,
                              "a positive duration in seconds", P)
    if UTT2NUM_FRAMES in pd.files:
        pd.utt2num_frames = _numbers(pd.files[UTT2NUM_FRAMES], UTT2NUM_FRAMES, int, lambda n: n >= 0,
                                     "a frame count", P)
    return pd


def _numbers(entries, name: str, convert, valid, what: str, problems: list[str]) -> dict:
    """``utt -> number`` of a per-utterance number file (utt2dur, utt2num_frames); each bad value
    is added to ``problems`` with its line, and left out."""
    out = {}
    for key, (ln, value) in entries.items():
        try:
            v = convert(value)
            ok = valid(v) and len(value.split()) == 1
        except ValueError:
            ok = False
        if not ok:
            problems.append(f"{name}:{ln}: utt '{key}': '{value}' is not {what}")
            continue
        out[key] = v
    return out


# --------------------------------------------------------------------------------------------


@dataclass
class DataDir:
    """An in-memory Kaldi data dir. ``DataDir.load(path)``; ``save(path)`` writes it (sorted)."""

    path: Path
    wav_scp: dict[str, str]
    utt2spk: dict[str, str]
    text: dict[str, str] | None = None
    segments: dict[str, Segment] | None = None
    utt2dur: dict[str, float] | None = None
    feats_scp: dict[str, str] | None = None
    utt2num_frames: dict[str, int] | None = None

    # ---- loading / saving
    @classmethod
    def load(cls, path: str | os.PathLike) -> "DataDir":
        """Parse ``path``; raises DataDirError listing every structural problem (missing
        wav.scp/utt2spk, malformed or duplicate lines, pipe entries). Consistency between files,
        sorting and audio existence are checked by :func:`asr.data.validate.check_datadir`.
        """
        path = Path(path)
        pd = parse_datadir(path)
        if pd.problems:
            raise DataDirError(format_problems(path, pd.problems))
        return cls._from_parsed(pd)

    @classmethod
    def _from_parsed(cls, pd: ParsedDataDir) -> "DataDir":
        def m(fname: str) -> dict[str, str] | None:
            return {k: v for k, (_, v) in pd.files[fname].items()} if fname in pd.files else None

        return cls(
            path=pd.path,
            wav_scp=m(WAV_SCP) or {},
            utt2spk=m(UTT2SPK) or {},
            text=m(TEXT),
            segments=pd.segments,
            utt2dur=pd.utt2dur,
            feats_scp=m(FEATS_SCP),
            utt2num_frames=pd.utt2num_frames,
        )

    def _portable_wav_scp(self, target: Path) -> dict[str, str]:
        """wav.scp for saving into ``target``: relative paths found via the data dir become absolute."""
        if target.resolve() == self.path.resolve():
            return dict(self.wav_scp)
        out = {}
        for k, v in self.wav_scp.items():
            p = Path(v).expanduser()
            if not is_pipe(v) and not p.is_absolute() and not p.exists() and (self.path / p).exists():
                v = str((self.path / p).resolve())
            out[k] = v
        return out

    def save(self, path: str | os.PathLike | None = None) -> "DataDir":
        """Write every file (sorted, atomically; unchanged files untouched) plus ``spk2utt``.

        Optional files whose field is None are removed from the target so it stays consistent.
        Saving elsewhere turns relative audio paths that were found via the source data dir into
        absolute paths. Returns the DataDir at its new path.
        """
        target = Path(path) if path is not None else self.path
        target.mkdir(parents=True, exist_ok=True)
        wav = self._portable_wav_scp(target)
        write_kaldi_map(target / WAV_SCP, wav)
        write_kaldi_map(target / UTT2SPK, self.utt2spk)
        write_kaldi_map(target / SPK2UTT, {s: " ".join(u) for s, u in self.spk2utt().items()})
        optional: dict[str, Mapping[str, object] | None] = {
            TEXT: self.text,
            SEGMENTS: None
            if self.segments is None
            else {
                u: f"{s.recording} {format_float(s.start)} {format_float(s.end) if s.end >= 0 else '-1'}"
                for u, s in self.segments.items()
            },
            UTT2DUR: None if self.utt2dur is None else {u: format_float(d) for u, d in self.utt2dur.items()},
            FEATS_SCP: self.feats_scp,
            UTT2NUM_FRAMES: self.utt2num_frames,
        }
        for fname, mapping in optional.items():
            if mapping is None:
                if (target / fname).is_file():
                    (target / fname).unlink()
            else:
                write_kaldi_map(target / fname, mapping)
        out = DataDir(
            path=target,
            wav_scp=wav,
            utt2spk=dict(self.utt2spk),
            text=None if self.text is None else dict(self.text),
            segments=None if self.segments is None else dict(self.segments),
            utt2dur=None if self.utt2dur is None else dict(self.utt2dur),
            feats_scp=None if self.feats_scp is None else dict(self.feats_scp),
            utt2num_frames=None if self.utt2num_frames is None else dict(self.utt2num_frames),
        )
        return out

    # ---- queries
    @property
    def utt_ids(self) -> list[str]:
        """Sorted utterance ids (keys of ``segments`` if present, else of ``wav.scp``)."""
        return sorted(self.segments if self.segments is not None else self.wav_scp)

    def __len__(self) -> int:
        return len(self.segments if self.segments is not None else self.wav_scp)

    def spk2utt(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for u in sorted(self.utt2spk):
            out.setdefault(self.utt2spk[u], []).append(u)
        return dict(sorted(out.items()))

    def recording_of(self, utt: str) -> str:
        if self.segments is not None:
            if utt not in self.segments:
                raise DataDirError(f"utt '{utt}' is not in {self.path / SEGMENTS}")
            return self.segments[utt].recording
        if utt not in self.wav_scp:
            raise DataDirError(f"utt '{utt}' is not in {self.path / WAV_SCP}")
        return utt

    def wav_path(self, key: str) -> Path:
        """Audio path of a wav.scp key (an utterance, or a recording when segments exist)."""
        if key not in self.wav_scp:
            raise DataDirError(f"'{key}' is not in {self.path / WAV_SCP}")
        value = self.wav_scp[key]
        if is_pipe(value):
            raise DataDirError(f"{self.path / WAV_SCP}: '{key}': '{value}' is a pipe command; {PIPE_HINT}")
        return resolve_audio_path(value, self.path)

    def audio(self, utt: str, sample_rate: int | None = 16000) -> np.ndarray:
        """float32 mono samples of ``utt`` at ``sample_rate`` (segments honoured)."""
        from ..audio import read_audio

        rec = self.recording_of(utt)
        path = self.wav_path(rec)
        try:
            if self.segments is not None:
                seg = self.segments[utt]
                return read_audio(path, sample_rate, offset=seg.start, duration=seg.duration)
            return read_audio(path, sample_rate)
        except AudioError as e:
            raise AudioError(f"utt '{utt}' ({self.path / WAV_SCP}): {e}") from e

    def durations(self, *, progress: bool = False) -> dict[str, float]:
        """Seconds per utterance: from ``utt2dur`` when it covers every utterance, else computed
        (segment end - start, or the audio header) for the missing ones."""
        from ..audio import audio_info

        have = dict(self.utt2dur or {})
        utts = self.utt_ids
        missing = [u for u in utts if u not in have]
        if missing:
            it: Iterable[str] = missing
            if progress:
                from tqdm import tqdm

                it = tqdm(missing, desc=f"utt2dur {self.path}", unit="utt", leave=False)
            rec_dur: dict[str, float] = {}
            for u in it:
                seg = self.segments[u] if self.segments is not None else None
                if seg is not None and seg.duration is not None:
                    have[u] = seg.duration
                    continue
                rec = self.recording_of(u)
                if rec not in rec_dur:
                    try:
                        rec_dur[rec] = audio_info(self.wav_path(rec)).duration
                    except AudioError as e:
                        raise AudioError(f"utt '{u}' ({self.path / WAV_SCP}): {e}") from e
                have[u] = rec_dur[rec] - (seg.start if seg is not None else 0.0)
        return {u: have[u] for u in utts}


def format_problems(path: str | os.PathLike, problems: list[str]) -> str:
    n = len(problems)
    head = f"data dir {path} has {n} problem{'s' if n != 1 else ''}:"
    return "\n".join([head] + [f"  {p}" for p in problems])
