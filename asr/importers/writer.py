"""Write the data dirs and LM text that corpus preparation (importers and the synthetic corpus) produces."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from ..atomic import atomic_write_text
from ..data.datadir import DataDir, kaldi_map_text, write_kaldi_map
from ..errors import DataDirError
from ..text import normalize_text

# files derived from the audio: stale once wav.scp/text/utt2spk change (stage 1/2 rebuild them)
DERIVED = ("utt2dur", "spk2utt", "feats.scp", "utt2num_frames", "feats.yaml", "cmvn.npz")


@dataclass(frozen=True)
class Utt:
    utt: str      # utterance id (prefixed by the speaker id, Kaldi convention)
    audio: str    # absolute audio path
    text: str     # transcript as the corpus gives it (normalised on writing)
    speaker: str  # speaker id


def write_datadir(out_dir: str | os.PathLike, utts: Iterable[Utt], normalize: bool = True,
                  utt2dur: Mapping[str, float] | None = None, log: Callable[[str], None] = print) -> dict:
    """wav.scp, text (normalised with :func:`asr.text.normalize_text`), utt2spk, sorted.

    Utterances whose transcript is empty after normalisation are dropped (and counted). Unchanged
    files are not rewritten; when any changes, derived files (utt2dur, feats.scp, ...) are removed.
    With ``utt2dur`` (seconds per utterance, known to the caller, e.g. the synthetic corpus) the
    derived ``utt2dur`` (millisecond precision) and ``spk2utt`` are written as well.
    Returns ``{"utterances", "speakers", "dropped_empty"}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wav, text, u2s = {}, {}, {}
    dropped = 0
    for u in utts:
        t = normalize_text(u.text) if normalize else " ".join(u.text.split())
        if not t:
            dropped += 1
            continue
        wav[u.utt], text[u.utt], u2s[u.utt] = u.audio, t, u.speaker
    changed = False
    for name, mapping in (("wav.scp", wav), ("text", text), ("utt2spk", u2s)):
        content = kaldi_map_text(mapping)
        p = out / name
        if not (p.is_file() and p.read_text(encoding="utf-8") == content):
            atomic_write_text(p, content)
            changed = True
    if changed:
        for name in DERIVED:
            if (out / name).exists():
                (out / name).unlink()
    if utt2dur is not None:
        missing = sorted(set(wav) - set(utt2dur))
        if missing:
            raise DataDirError(f"{out}: no duration given for {len(missing)} utterance(s), e.g. {missing[0]}")
        write_kaldi_map(out / "utt2dur", {u: f"{utt2dur[u]:.3f}" for u in wav})
        spk2utt = DataDir(path=out, wav_scp=wav, utt2spk=u2s).spk2utt()
        write_kaldi_map(out / "spk2utt", {s: " ".join(us) for s, us in spk2utt.items()})
    stats = {"utterances": len(wav), "speakers": len(set(u2s.values())), "dropped_empty": dropped}
    log(f"{out}: {stats['utterances']} utterances, {stats['speakers']} speakers"
        + (f", {dropped} dropped (empty transcript after normalisation)" if dropped else "")
        + ("" if changed else " (unchanged)"))
    return stats


def read_text_values(data_dir: str | os.PathLike) -> list[str]:
    """The transcripts of a data dir's ``text`` file, in file order."""
    lines = (Path(data_dir) / "text").read_text(encoding="utf-8").splitlines()
    return [parts[1] if len(parts) > 1 else "" for parts in (ln.split(maxsplit=1) for ln in lines if ln.strip())]


def _open_text(path: Path):
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def write_lm_text(out_dir: str | os.PathLike, train_texts: Sequence[str], dev_texts: Sequence[str],
                  extra_text: str | os.PathLike | None = None, exclude: Iterable[str] = (),
                  log: Callable[[str], None] = print) -> dict:
    """``lm_text/train.txt`` (training transcripts, then ``extra_text`` normalised line by line minus
    any sentence in ``exclude``) and ``lm_text/dev.txt`` (dev transcripts), both normalised.

    ``extra_text`` may be gzipped (e.g. LibriSpeech's ``librispeech-lm-norm.txt.gz``); lines that are
    already upper-case letters/apostrophes are only lower-cased (fast path for 40 M lines).
    """
    import re

    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    held = set(exclude)
    n_train, n_extra, n_skipped = 0, 0, 0
    plain = re.compile(r"[A-Z' ]+")
    tmp = out / f".train.txt.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        for t in train_texts:
            if t:
                f.write(t + "\n")
                n_train += 1
        if extra_text is not None:
            extra = Path(extra_text)
            with _open_text(extra) as src:
                for line in tqdm(src, desc=f"LM text {extra.name}", unit=" lines", disable=None, leave=False):
                    line = line.strip()
                    t = line.lower() if plain.fullmatch(line) else normalize_text(line)
                    t = " ".join(t.split())
                    if not t:
                        continue
                    if t in held:
                        n_skipped += 1
                        continue
                    f.write(t + "\n")
                    n_extra += 1
    os.replace(tmp, out / "train.txt")
    atomic_write_text(out / "dev.txt", "".join(t + "\n" for t in dev_texts if t))
    log(f"{out}: train.txt {n_train} transcripts" + (f" + {n_extra} lines of {extra_text} ({n_skipped} dev/test "
                                                     f"sentences left out)" if extra_text else "")
        + f", dev.txt {sum(1 for t in dev_texts if t)} transcripts")
    return {"train_transcripts": n_train, "extra_lines": n_extra, "excluded": n_skipped}
