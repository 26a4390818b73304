"""A folder of your own recordings -> train/dev/test data dirs for adapting a model (recipes/adapt stage 0).

Layouts (transcripts are looked up in this order)::

    DIR/**/NAME.wav (.flac .ogg .opus .mp3)   the recordings; a first-level subfolder is the speaker
                                              (MFA: DIR/<speaker>/NAME.wav), files at the top belong
                                              to --speaker
    --text FILE                               Kaldi "<key> <transcript>" lines, the key being the
                                              file's name without extension, its path below DIR
                                              (with or without extension) or its utterance id; or a
                                              FILE.tsv with "path<TAB>text" lines (path below DIR)
    DIR/**/NAME.txt or NAME.lab               else: one transcript beside each audio file (MFA,
                                              Common Voice style exports)

With no transcripts at all, ``--guess-with PKG`` transcribes every file with that model into the
``--guesses`` TSV and stops (exit status 2): correct the TSV, then run again with
``--transcripts-checked`` — nothing trains on unchecked machine transcripts. A line whose text
is left empty drops that recording.

The split is deterministic: utterances (``--split-by file``) or whole speakers (``speaker``) are
ordered by a hash of their id, and the first ``--dev-share`` of them go to dev, the next
``--test-share`` to test (the held-out recordings the WER before/after is reported on), the rest to
train; ``--dev-list``/``--test-list`` (one key per line, as in --text) name them instead.

``--mix-data DIR --mix-hours H`` adds about H hours of another data dir (e.g. the machine-made
corpus recipes/tts_en/data/train), chosen by the same hash, to train only, with ids prefixed
``mix-``, so that fine-tuning does not forget what the model knew.

Writes ``OUT/{train,dev,test}/`` (wav.scp, text, utt2spk), ``OUT/lm_text/{train,dev}.txt`` and
``OUT/split.json`` (counts and minutes per set, which keys went where).
"""
from __future__ import annotations

import argparse
import hashlib
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..atomic import atomic_write_json, atomic_write_text
from ..errors import DataDirError
from .layout import CorpusLayoutError
from .writer import Utt, write_datadir, write_lm_text

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3")
TRANSCRIPT_SUFFIXES = (".txt", ".lab")
NEEDS_REVIEW_EXIT = 2  # `asr import-audio-folder` stopped so that machine transcripts can be checked
GUESS_HEADER = ("# Machine transcripts of {dir} by {model}.\n"
                "# Correct each line (path<TAB>text; leave the text empty to drop a recording), then run again with\n"
                "# --transcripts_checked true (recipes/adapt) or --transcripts-checked (asr import-audio-folder).\n"
                "path\ttext\n")


@dataclass(frozen=True)
class Recording:
    path: Path  # absolute audio path
    rel: str  # path below the audio folder, posix
    speaker: str
    utt: str  # utterance id: <speaker>-<name>

    @property
    def keys(self) -> tuple[str, ...]:
        """The names a transcript list may use for this recording."""
        stem = self.rel.rsplit(".", 1)[0]
        return (self.utt, self.rel, stem, Path(stem).name)


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_") or "x"


def scan(audio_dir: Path, speaker: str) -> list[Recording]:
    """Every audio file below ``audio_dir`` (sorted), with its speaker and utterance id."""
    if not audio_dir.is_dir():
        raise CorpusLayoutError(f"--audio-dir {audio_dir} is not a folder")
    out, seen = [], {}
    for p in sorted(audio_dir.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        rel = p.relative_to(audio_dir).as_posix()
        parts = rel.split("/")
        spk = _safe(parts[0]) if len(parts) > 1 else _safe(speaker)
        name = _safe("-".join(parts[1:] if len(parts) > 1 else parts).rsplit(".", 1)[0])
        utt = f"{spk}-{name}"
        if utt in seen:
            raise CorpusLayoutError(f"{audio_dir}: {seen[utt]} and {rel} would both be utterance {utt}; rename one")
        seen[utt] = rel
        out.append(Recording(p.resolve(), rel, spk, utt))
    if not out:
        raise CorpusLayoutError(f"{audio_dir} holds no audio files ({', '.join(AUDIO_SUFFIXES)}), looked in every "
                                "subfolder")
    return out


def _key_index(recs: Sequence[Recording]) -> dict[str, Recording]:
    idx: dict[str, Recording] = {}
    ambiguous = set()
    for r in recs:
        for k in dict.fromkeys(r.keys):
            if k in idx and idx[k] is not r:
                ambiguous.add(k)
            idx[k] = r
    for k in ambiguous:  # a bare name shared by two speakers' files: only the longer keys work
        del idx[k]
    return idx


def read_transcript_list(path: Path, recs: Sequence[Recording]) -> dict[str, str]:
    """utt -> transcript from a Kaldi text file or a path<TAB>text TSV; every key must name a recording."""
    if not path.is_file():
        raise DataDirError(f"transcript list {path} does not exist")
    idx = _key_index(recs)
    tsv = path.suffix.lower() == ".tsv"
    out: dict[str, str] = {}
    unknown = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#") or (tsv and line.strip() == "path\ttext"):
            continue
        if tsv:
            key, _, text = line.partition("\t")
        else:
            parts = line.split(maxsplit=1)
            key, text = parts[0], parts[1] if len(parts) > 1 else ""
        rec = idx.get(key.strip())
        if rec is None:
            unknown.append(f"line {n}: {key.strip()!r}")
            continue
        out[rec.utt] = text.strip()
    if unknown:
        raise DataDirError(f"{path}: {len(unknown)} line(s) name no audio file of the folder ({'; '.join(unknown[:5])}"
                           f"{' ...' if len(unknown) > 5 else ''}); keys are file names without extension, paths "
                           "below the folder or utterance ids")
    return out


def beside_transcripts(recs: Sequence[Recording]) -> dict[str, str]:
    """utt -> transcript of the .txt/.lab file beside each recording (those that have one)."""
    out = {}
    for r in recs:
        for suf in TRANSCRIPT_SUFFIXES:
            t = r.path.with_suffix(suf)
            if t.is_file():
                out[r.utt] = " ".join(t.read_text(encoding="utf-8", errors="replace").split())
                break
    return out


def write_guesses(recs: Sequence[Recording], audio_dir: Path, model_dir: str, out: Path) -> None:
    """Transcribe every recording with ``model_dir`` into the TSV ``out`` for the user to correct."""
    from tqdm import tqdm

    from ..recognizer import Recognizer

    m = Recognizer(model_dir)
    lines = [GUESS_HEADER.format(dir=audio_dir, model=model_dir)]
    for r in tqdm(recs, desc="transcribing for you to check", unit="file", disable=None):
        lines.append(f"{r.rel}\t{m.transcribe(r.path)}\n")
    atomic_write_text(out, "".join(lines))


def _order(ids: Sequence[str]) -> list[str]:
    """``ids`` in a fixed pseudo-random order (by a hash of each id: the same whatever else is there)."""
    return sorted(ids, key=lambda s: hashlib.sha1(s.encode()).hexdigest())


def _read_list(path: Path, recs: Sequence[Recording], what: str) -> set[str]:
    idx = _key_index(recs)
    keys = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    bad = [k for k in keys if k not in idx]
    if bad:
        raise DataDirError(f"{what} {path}: {len(bad)} key(s) name no audio file of the folder: {bad[:5]}")
    return {idx[k].utt for k in keys}


def split(recs: Sequence[Recording], dev_share: float, test_share: float, by: str = "file",
          dev_list: set[str] | None = None, test_list: set[str] | None = None) -> dict[str, list[Recording]]:
    """train/dev/test recordings (see the module doc); each set gets at least one."""
    for name, v in (("dev share", dev_share), ("test share", test_share)):
        if not 0 <= v < 1:
            raise DataDirError(f"{name} must be within [0, 1), got {v}")
    if by not in ("file", "speaker"):
        raise DataDirError(f"--split-by {by!r}: use file or speaker")
    groups: dict[str, list[Recording]] = {}
    for r in recs:
        groups.setdefault(r.utt if by == "file" else r.speaker, []).append(r)
    order = _order(list(groups))
    n = len(recs)
    sets: dict[str, list[Recording]] = {"dev": [], "test": [], "train": []}
    fixed = {**{u: "dev" for u in dev_list or ()}, **{u: "test" for u in test_list or ()}}
    want = {"dev": 0 if dev_list is not None else max(1, math.ceil(dev_share * n)),
            "test": 0 if test_list is not None else max(1, math.ceil(test_share * n))}
    for g in order:
        members = groups[g]
        for r in members:
            if r.utt in fixed:
                sets[fixed[r.utt]].append(r)
        rest = [r for r in members if r.utt not in fixed]
        if not rest:
            continue
        target = next((s for s in ("dev", "test") if len(sets[s]) < want[s]), "train")
        sets[target] += rest
    empty = [s for s in ("train", "dev", "test") if not sets[s]]
    if empty:
        raise DataDirError(f"{n} recording(s) in {len(groups)} {by} group(s) leave no {' or '.join(empty)} "
                           "utterance: record more, or change --dev-share/--test-share (--dev-list/--test-list)")
    return sets


def mix_utterances(mix_dir: Path, hours: float, log: Callable[[str], None] = print) -> tuple[list[Utt], float]:
    """About ``hours`` of ``mix_dir`` (chosen by the id hash) as ``mix-`` prefixed utterances."""
    from ..data.datadir import DataDir

    dd = DataDir.load(mix_dir)
    if dd.segments is not None:
        raise DataDirError(f"--mix-data {mix_dir} has a segments file; give a data dir with one file per utterance")
    if dd.text is None:
        raise DataDirError(f"--mix-data {mix_dir} has no text file")
    dur = dd.durations(progress=True)
    out, total = [], 0.0
    for u in _order(list(dd.wav_scp)):
        if total >= hours * 3600:
            break
        out.append(Utt(f"mix-{u}", str(dd.wav_path(u).resolve()), dd.text[u], f"mix-{dd.utt2spk[u]}"))
        total += dur[u]
    log(f"mixing in {len(out)} utterances ({total / 3600:.2f} h) of {mix_dir} ({len(dd.wav_scp)} there)")
    return out, total


def import_folder(audio_dir: str | Path, out_dir: str | Path, text: str | Path | None = None, speaker: str = "user",
                  dev_share: float = 0.1, test_share: float = 0.15, split_by: str = "file",
                  dev_list: str | Path | None = None, test_list: str | Path | None = None,
                  mix_data: str | Path | None = None, mix_hours: float = 0.0, guess_with: str | None = None,
                  guesses: str | Path | None = None, transcripts_checked: bool = False,
                  log: Callable[[str], None] = print) -> dict:
    """The data dirs of the module doc; returns the summary written to ``OUT/split.json``, or
    ``{"needs_review": TSV}`` when machine transcripts were written (or are still unchecked)."""
    from ..data.datadir import DataDir

    audio_dir, out = Path(audio_dir).resolve(), Path(out_dir)
    recs = scan(audio_dir, speaker)
    if text:
        trans, source = read_transcript_list(Path(text), recs), str(text)
    else:
        trans, source = beside_transcripts(recs), "the .txt/.lab files beside the audio"
    if not trans:
        g = Path(guesses) if guesses else out / "transcripts.tsv"
        if g.is_file() and transcripts_checked:
            trans, source = read_transcript_list(g, recs), f"{g} (checked by you)"
        else:
            if not g.is_file():
                if not guess_with:
                    raise CorpusLayoutError(
                        f"{audio_dir}: no transcripts (no --text and no .txt/.lab beside the audio files); give "
                        "them, or a model to transcribe the files with for you to correct (--guess-with)")
                write_guesses(recs, audio_dir, guess_with, g)
                log(f"{audio_dir} has audio only: {len(recs)} files transcribed by {guess_with} into {g}")
            return {"needs_review": str(g)}
    missing = [r.rel for r in recs if r.utt not in trans]
    if missing:
        raise DataDirError(f"{len(missing)} of {len(recs)} audio files have no transcript in {source}: "
                           f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    sets = split(recs, dev_share, test_share, split_by,
                 _read_list(Path(dev_list), recs, "--dev-list") if dev_list else None,
                 _read_list(Path(test_list), recs, "--test-list") if test_list else None)
    summary: dict = {"audio_dir": str(audio_dir), "transcripts": source, "split_by": split_by, "sets": {}}
    texts = {}
    for name in ("train", "dev", "test"):
        utts = [Utt(r.utt, str(r.path), trans[r.utt], r.speaker) for r in sets[name]]
        mixed = []
        if name == "train" and mix_data and mix_hours > 0:
            mixed, _ = mix_utterances(Path(mix_data), mix_hours, log)
        write_datadir(out / name, utts + mixed, log=log)
        dd = DataDir.load(out / name)
        dur = dd.durations()
        own = [u.utt for u in utts if u.utt in dd.wav_scp]
        summary["sets"][name] = {"utterances": len(own), "minutes": round(sum(dur[u] for u in own) / 60, 2),
                                 "speakers": len({u.speaker for u in utts}), "utts": own}
        if mixed:
            summary["sets"][name]["mixed_utterances"] = len(mixed)
            summary["sets"][name]["mixed_hours"] = round(sum(dur[u.utt] for u in mixed if u.utt in dur) / 3600, 3)
        texts[name] = [dd.text[u] for u in sorted(dd.text)] if dd.text else []
    if not (mix_data and mix_hours > 0):
        log("no --mix-data: training on your recordings only (the model may forget some of what it knew; "
            "give e.g. recipes/tts_en/data/train and --mix-hours to mix machine-made speech in)")
    write_lm_text(out / "lm_text", texts["train"], texts["dev"], log=log)
    atomic_write_json(out / "split.json", summary)
    for name, s in summary["sets"].items():
        log(f"{name}: {s['utterances']} of your recordings ({s['minutes']:.1f} min)"
            + (f" + {s['mixed_utterances']} mixed-in utterances ({s['mixed_hours']:.2f} h)" if "mixed_utterances" in s else ""))
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--audio-dir", required=True, help="folder of recordings (subfolders: speakers)")
    p.add_argument("--data-dir", required=True, help="output folder for train/, dev/, test/, lm_text/")
    p.add_argument("--text", default=None, help="Kaldi text file or path<TAB>text .tsv (else .txt/.lab beside each file)")
    p.add_argument("--speaker", default="user", help="speaker id of the files at the top of --audio-dir")
    p.add_argument("--dev-share", type=float, default=0.1, help="share held out as dev (early stopping, alpha/beta)")
    p.add_argument("--test-share", type=float, default=0.15, help="share held out as test (the WER before/after)")
    p.add_argument("--split-by", default="file", choices=("file", "speaker"), help="hold out files or whole speakers")
    p.add_argument("--dev-list", default=None, help="file of keys to hold out as dev (instead of --dev-share)")
    p.add_argument("--test-list", default=None, help="file of keys to hold out as test (instead of --test-share)")
    p.add_argument("--mix-data", default=None, help="data dir to mix into train (e.g. the machine-made corpus)")
    p.add_argument("--mix-hours", type=float, default=0.0, help="hours of --mix-data to mix in")
    p.add_argument("--guess-with", default=None, help="audio only: model package to transcribe the files with")
    p.add_argument("--guesses", default=None, help="the TSV of machine transcripts (default DATA_DIR/transcripts.tsv)")
    p.add_argument("--transcripts-checked", action="store_true", help="the --guesses TSV has been corrected: use it")


def run(args) -> int:
    s = import_folder(args.audio_dir, args.data_dir, args.text, args.speaker, args.dev_share, args.test_share,
                      args.split_by, args.dev_list, args.test_list, args.mix_data, args.mix_hours, args.guess_with,
                      args.guesses, args.transcripts_checked)
    if "needs_review" in s:
        print(f"\nStopped before training: {s['needs_review']} holds machine transcripts of your recordings.\n"
              "Correct every line (the model makes mistakes; leave a text empty to drop a recording), then run\n"
              "again with --transcripts_checked true (recipes/adapt/run.sh) or --transcripts-checked.",
              file=sys.stderr)
        return NEEDS_REVIEW_EXIT
    return 0
