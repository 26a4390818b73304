"""Batch transcription of many files with one recognizer, or one per worker process.

* Inputs: paths, a list file (:func:`read_list`: one path per line) or a Kaldi ``wav.scp``
  (:func:`read_scp`: ``utt path`` lines; pipe commands are refused, naming the line).
* Batching: files are sorted by duration (from their headers) and files of similar length go
  through the model together (:meth:`Recognizer.transcribe_batch`) in batches of at most
  ``decode.batch_frames`` padded feature frames and :data:`MAX_PADDING` padding; a file longer than one piece
  (:data:`asr.segment.MAX_PIECE_SECONDS`) goes alone through :meth:`Recognizer.transcribe`'s
  long-file path. The text of every file (or, with ``transcribe_options`` such as
  ``word_timestamps=True`` / ``nbest=N``, its :class:`~asr.recognizer.core.Transcript`) is the one
  :meth:`Recognizer.transcribe` gives it alone.
* Workers: ``nj > 1`` starts that many processes (spawned), each with its own recognizer on one
  thread; batches are handed out as workers become free.
* Errors: a file that cannot be read (:class:`~asr.errors.AudioError`) gives a :class:`FileResult`
  with ``error`` set; the other files are still transcribed.
* Order: :func:`transcribe_files` yields one result per input, in input order, each as soon as it
  and every input before it are done.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import AudioError, DataDirError

# A batch closes before its padding exceeds this share of its audio: padded frames cost as much as
# real ones (measured with the ONNX BiLSTM on one thread: batches within 5 % padding 1.2x faster
# than one file at a time, one batch of 1-6 s files 1.7x slower)
MAX_PADDING = 0.05


@dataclass(frozen=True)
class Item:
    key: str  # the input's name in the output: the path as given, or the wav.scp utterance id
    path: str  # the audio file


@dataclass(frozen=True)
class FileResult:
    key: str  # Item.key
    path: str  # Item.path
    result: Any = None  # what the recognizer returned: the text, or what ``transcribe_options`` ask for; None = failed
    duration: float | None = None  # seconds of audio (from the header); None when unreadable
    error: str | None = None  # why the file failed (names the file)

    @property
    def text(self) -> str | None:
        """The transcript (None when the file failed)."""
        return self.result if self.result is None or isinstance(self.result, str) else self.result.text


def read_list(path: str | os.PathLike) -> list[Item]:
    """One audio path per line (blank and ``#`` lines skipped); relative paths are taken relative
    to the current directory, as a shell would."""
    p = Path(path)
    if not p.is_file():
        raise DataDirError(f"file list {p} does not exist")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataDirError(f"file list {p} is not UTF-8 text ({e})") from None
    items = [Item(s, s) for s in (ln.strip() for ln in lines) if s and not s.startswith("#")]
    if not items:
        raise DataDirError(f"file list {p} lists no file")
    return items


def read_scp(path: str | os.PathLike) -> list[Item]:
    """A Kaldi ``wav.scp``: ``utt path`` lines (blank lines skipped). Relative paths are looked up
    as in a data dir (the current directory, then the scp's folder). Pipe commands (``... |``),
    lines without a path and repeated ids are refused, every one named by ``FILE:LINE``."""
    from ..data.datadir import PIPE_HINT, is_pipe, parse_kaldi_lines, resolve_audio_path

    p = Path(path)
    if not p.is_file():
        raise DataDirError(f"wav.scp {p} does not exist")
    problems: list[str] = []
    entries = parse_kaldi_lines(p, problems, str(p))
    problems = [x for x in problems if "blank line" not in x]
    for key, (ln, value) in entries.items():
        if is_pipe(value):
            problems.append(f"{p}:{ln}: '{key}': '{value}' is a pipe command; {PIPE_HINT}")
    if problems:
        raise DataDirError("\n".join(problems))
    if not entries:
        raise DataDirError(f"wav.scp {p} lists no file")
    return [Item(key, str(resolve_audio_path(value, p.parent))) for key, (_, value) in entries.items()]


# ---- the work: one task = one batch of short files, or one long file
Task = list[tuple[int, str]]  # (input index, path)
Outcome = list[tuple[int, Any, str | None]]  # (input index, result, error)


def _run_task(rec, task: Task, long_file: bool, opts: dict) -> Outcome:
    from ..audio import read_audio

    if long_file:
        (i, path), = task
        try:
            return [(i, rec.transcribe(path, **opts), None)]
        except AudioError as e:
            return [(i, None, str(e))]
    out: Outcome = []
    ok, waves = [], []
    for i, path in task:
        try:
            waves.append(read_audio(path, rec.sample_rate))
            ok.append(i)
        except AudioError as e:
            out.append((i, None, str(e)))
    if waves:
        out += [(i, t, None) for i, t in zip(ok, rec.transcribe_batch(waves, rec.sample_rate, **opts))]
    return out


def plan(items: Sequence[Item], frame_shift: float, batch_frames: int,
         parts: int = 1) -> tuple[list[tuple[Task, bool]], dict[int, float], dict[int, str]]:
    """The tasks for ``items`` (length-sorted batches of at most ``batch_frames`` padded feature
    frames and :data:`MAX_PADDING` padding, smaller where that makes at least ``parts`` batches for
    ``parts`` workers, and one task per long file), the durations from the headers, and the files
    whose header cannot be read (index -> error)."""
    from ..audio import audio_info
    from ..segment import MAX_PIECE_SECONDS

    durations: dict[int, float] = {}
    errors: dict[int, str] = {}
    for i, it in enumerate(items):
        try:
            durations[i] = audio_info(it.path).duration
        except AudioError as e:
            errors[i] = str(e)
    short = [d for d in durations.values() if d <= MAX_PIECE_SECONDS]
    budget = batch_frames if parts == 1 else min(batch_frames, max(1.0, sum(short) / frame_shift / parts))
    tasks: list[tuple[Task, bool]] = []
    batch: Task = []
    total = 0.0
    for i in sorted(durations, key=lambda i: (durations[i], i)):
        d = durations[i]  # the longest of the batch so far: files come shortest first
        if d > MAX_PIECE_SECONDS:
            tasks.append(([(i, items[i].path)], True))
            continue
        padded = d * (len(batch) + 1)
        if batch and (padded / frame_shift > budget or padded > (1 + MAX_PADDING) * (total + d)):
            tasks.append((batch, False))
            batch, total = [], 0.0
        batch.append((i, items[i].path))
        total += d
    if batch:
        tasks.append((batch, False))
    return tasks, durations, errors


_WORKER = None  # the recognizer of a worker process


def _init_worker(model, options: dict) -> None:
    global _WORKER
    from . import Recognizer

    _WORKER = Recognizer(model, threads=1, **options)


def _work(task: tuple[Task, bool, dict]) -> Outcome:
    return _run_task(_WORKER, *task)


def transcribe_files(rec, items: Sequence[Item], *, nj: int = 1, options: dict | None = None,
                     transcribe_options: dict | None = None, progress: bool = False) -> Iterator[FileResult]:
    """:class:`FileResult` of every item, in input order (see the module doc).

    ``rec``: the recognizer; it transcribes when ``nj == 1``, and its settings decide the batches.
    ``nj > 1``: each worker builds ``Recognizer(rec.package_dir, threads=1, **options)`` (give the
    keywords ``rec`` was built with). ``transcribe_options``: keywords of ``rec.transcribe`` and
    ``rec.transcribe_batch`` (what each result holds). ``progress``: a tqdm bar over files on stderr."""
    from tqdm import tqdm

    tasks, durations, errors = plan(items, rec.frame_shift, rec.decode_config.batch_frames, nj)
    opts = dict(transcribe_options or {})
    done: dict[int, FileResult] = {}
    for i, e in errors.items():
        done[i] = FileResult(items[i].key, items[i].path, None, None, e)

    def outcomes() -> Iterator[Outcome]:
        if nj == 1 or len(tasks) <= 1:
            for t, long_file in tasks:
                yield _run_task(rec, t, long_file, opts)
            return
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(nj, len(tasks)), _init_worker,
                                         (str(rec.package_dir), options or {})) as pool:
            yield from pool.imap_unordered(_work, [(t, long_file, opts) for t, long_file in tasks])

    nxt = 0
    with tqdm(total=len(items), desc="transcribe", unit="file", disable=not progress, leave=False) as bar:
        bar.update(len(errors))
        for out in outcomes():
            for i, result, err in out:
                done[i] = FileResult(items[i].key, items[i].path, result, durations.get(i), err)
            bar.update(len(out))
            while nxt in done:
                yield done.pop(nxt)
                nxt += 1
        while nxt in done:
            yield done.pop(nxt)
            nxt += 1

