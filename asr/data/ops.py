"""Data dir operations: subset, split, combine, sort and fix (Kaldi's subset_data_dir.sh,
split_data.sh, combine_data.sh and fix_data_dir.sh)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import DataDirError
from .datadir import DataDir, Segment


def _as_datadir(d: DataDir | str | os.PathLike) -> DataDir:
    return d if isinstance(d, DataDir) else DataDir.load(d)


def _select(dd: DataDir, utts: Sequence[str], path: Path) -> DataDir:
    keep = set(utts)

    def pick(m):
        return None if m is None else {u: v for u, v in m.items() if u in keep}

    if dd.segments is not None:
        segments = pick(dd.segments)
        recs = {s.recording for s in segments.values()}
        wav = {r: p for r, p in dd.wav_scp.items() if r in recs}
    else:
        segments = None
        wav = pick(dd.wav_scp)
    return DataDir(
        path=dd.path,  # so relative audio paths resolve against the source on save
        wav_scp=wav,
        utt2spk=pick(dd.utt2spk),
        text=pick(dd.text),
        segments=segments,
        utt2dur=pick(dd.utt2dur),
        feats_scp=pick(dd.feats_scp),
        utt2num_frames=pick(dd.utt2num_frames),
    )


def subset(dd: DataDir | str | os.PathLike, utt_ids: Iterable[str], out_path: str | os.PathLike) -> DataDir:
    """Write the utterances ``utt_ids`` of ``dd`` to ``out_path`` (recordings follow segments)."""
    dd = _as_datadir(dd)
    utt_ids = list(utt_ids)
    known = set(dd.utt_ids)
    unknown = [u for u in utt_ids if u not in known]
    if unknown:
        raise DataDirError(
            f"subset of {dd.path}: {len(unknown)} utterance id(s) not in the data dir: "
            f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}"
        )
    return _select(dd, utt_ids, dd.path).save(out_path)


def split(dd: DataDir | str | os.PathLike, n: int, out_root: str | os.PathLike) -> list[DataDir]:
    """Split into ``n`` parts written to ``out_root/1`` .. ``out_root/n``.

    With at least ``n`` speakers, whole speakers go to parts (greedy, balancing utterance count or
    total duration when utt2dur exists); otherwise utterances are split into contiguous runs.
    Deterministic.
    """
    dd = _as_datadir(dd)
    utts = dd.utt_ids
    if n < 1:
        raise DataDirError(f"split: n must be >= 1, got {n}")
    if n > len(utts):
        raise DataDirError(f"split: cannot split {dd.path} ({len(utts)} utterances) into {n} parts")
    weight = (lambda u: dd.utt2dur[u]) if dd.utt2dur is not None and set(dd.utt2dur) >= set(utts) else (lambda u: 1.0)
    parts: list[list[str]] = [[] for _ in range(n)]
    utt_set = set(utts)
    spk2utt = {s: [u for u in us if u in utt_set] for s, us in dd.spk2utt().items()}
    spk2utt = {s: us for s, us in spk2utt.items() if us}
    if len(spk2utt) >= n:
        loads = [0.0] * n
        order = sorted(spk2utt, key=lambda s: (-sum(weight(u) for u in spk2utt[s]), s))
        for s in order:
            i = min(range(n), key=lambda j: (loads[j], j))
            parts[i].extend(spk2utt[s])
            loads[i] += sum(weight(u) for u in spk2utt[s])
    else:
        total = sum(weight(u) for u in utts)
        acc, i = 0.0, 0
        for k, u in enumerate(utts):
            # move on when this part has its share, keeping at least one utterance for each later part
            remaining_parts = n - i - 1
            if parts[i] and (acc >= total * (i + 1) / n or len(utts) - k <= remaining_parts) and i < n - 1:
                i += 1
            parts[i].append(u)
            acc += weight(u)
    out_root = Path(out_root)
    return [_select(dd, sorted(p), dd.path).save(out_root / str(i + 1)) for i, p in enumerate(parts)]


def combine(dirs: Sequence[DataDir | str | os.PathLike], out_path: str | os.PathLike) -> DataDir:
    """Union of data dirs. Utterance ids must be distinct; a recording id shared between dirs must
    point at the same audio. ``text``/``utt2dur``/``feats.scp`` are kept when every dir has them.
    If some dirs use segments, the others get whole-file segments.
    """
    dds = [_as_datadir(d) for d in dirs]
    if not dds:
        raise DataDirError("combine: no data dirs given")
    any_seg = any(d.segments is not None for d in dds)
    wav: dict[str, str] = {}
    wav_from: dict[str, Path] = {}
    utt_from: dict[str, Path] = {}
    out = DataDir(path=Path(out_path), wav_scp={}, utt2spk={}, segments={} if any_seg else None)
    keep = {
        name: all(getattr(d, name) is not None for d in dds) for name in ("text", "utt2dur", "feats_scp", "utt2num_frames")
    }
    for name, k in keep.items():
        setattr(out, name, {} if k else None)
    problems: list[str] = []
    for d in dds:
        portable = d._portable_wav_scp(Path(out_path))
        for u in d.utt_ids:
            if u in utt_from:
                problems.append(f"utt '{u}' is in both {utt_from[u]} and {d.path}")
                continue
            utt_from[u] = d.path
        for r, p in portable.items():
            if r in wav and wav[r] != p:
                problems.append(f"recording '{r}' is {wav[r]} in {wav_from[r]} but {p} in {d.path}")
            wav[r], wav_from[r] = p, d.path
        out.utt2spk.update(d.utt2spk)
        if any_seg:
            if d.segments is not None:
                out.segments.update(d.segments)
            else:
                for u in d.utt_ids:
                    end = d.utt2dur[u] if d.utt2dur and u in d.utt2dur else -1.0
                    out.segments[u] = Segment(u, 0.0, end)
        for name, k in keep.items():
            if k:
                getattr(out, name).update(getattr(d, name))
    if problems:
        raise DataDirError("combine: " + "; ".join(problems[:20]) + (" ..." if len(problems) > 20 else ""))
    out.wav_scp = wav
    out.path = Path(out_path)
    return out.save(out_path)


def sort_datadir(path: str | os.PathLike) -> DataDir:
    """Rewrite every file of the data dir sorted by id (unchanged files keep their mtime)."""
    return DataDir.load(path).save(path)


def fix_datadir(path: str | os.PathLike) -> tuple[DataDir, list[str]]:
    """Keep only utterances present in every per-utterance file (and whose segment's recording is
    in wav.scp); sort; rewrite. Returns ``(DataDir, dropped utterance ids)``."""
    dd = DataDir.load(path)
    sets = [set(dd.utt_ids), set(dd.utt2spk)]
    for m in (dd.text, dd.utt2dur, dd.feats_scp, dd.utt2num_frames):
        if m is not None:
            sets.append(set(m))
    keep = set.intersection(*sets)
    if dd.segments is not None:
        keep = {u for u in keep if dd.segments[u].recording in dd.wav_scp}
    if dd.text is not None:
        keep = {u for u in keep if dd.text[u].strip()}
    every = set.union(*sets)
    dropped = sorted(every - keep)
    return _select(dd, sorted(keep), dd.path).save(path), dropped
