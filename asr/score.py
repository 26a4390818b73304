"""Scoring with jiwer: WER, CER, error counts, per-utterance alignments, RESULTS.md.

``asr score --data DATADIR --decode DIR [--exp EXP --name NAME]`` reads ``DATADIR/text`` (reference)
and ``DIR/hyp`` (Kaldi ``utt-id words``) and writes, atomically:

- ``DIR/wer.json`` and ``DIR/wer.txt``: WER, CER, substitutions/deletions/insertions, counts;
- ``DIR/alignments.txt``: jiwer's REF/HYP alignment of every utterance, with its own WER;
- a row in ``EXP/RESULTS.md`` (one table per experiment; a rerun replaces its row).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import jiwer

from .atomic import atomic_write_json, atomic_write_text
from .errors import DataDirError


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> dict:
    """WER/CER and error counts of hypotheses against references (jiwer).

    Utterances with an empty reference are left out of the rates (jiwer cannot score them) and
    counted in ``empty_refs``.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    pairs = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
    out = {"utterances": len(refs), "empty_refs": len(refs) - len(pairs)}
    if not pairs:
        return {**out, "wer": 0.0, "cer": 0.0, "substitutions": 0, "deletions": 0, "insertions": 0,
                "hits": 0, "ref_words": 0}
    r, h = [p[0] for p in pairs], [p[1] for p in pairs]
    w = jiwer.process_words(r, h)
    c = jiwer.process_characters(r, h)
    ref_words = w.hits + w.substitutions + w.deletions
    return {**out, "wer": w.wer, "cer": c.cer, "substitutions": w.substitutions, "deletions": w.deletions,
            "insertions": w.insertions, "hits": w.hits, "ref_words": ref_words,
            "sentence_errors": sum(1 for a, b in pairs if a.split() != b.split())}


def read_text_file(path: Path, what: str) -> dict[str, str]:
    if not path.is_file():
        raise DataDirError(f"{what} {path} does not exist")
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return out


def score_dir(data_dir: str | os.PathLike, decode_dir: str | os.PathLike, exp_dir: str | os.PathLike | None = None,
              name: str | None = None, description: str = "") -> dict:
    data_dir, decode_dir = Path(data_dir), Path(decode_dir)
    refs = read_text_file(data_dir / "text", "reference transcripts")
    hyps = read_text_file(decode_dir / "hyp", "hypotheses")
    missing = sorted(set(refs) - set(hyps))
    extra = sorted(set(hyps) - set(refs))
    if extra:
        raise DataDirError(f"{decode_dir}/hyp has {len(extra)} utterance(s) not in {data_dir}/text, e.g. {extra[:3]}")
    utts = sorted(refs)
    # A missing hypothesis counts as an empty one (all deletions) and is reported.
    result = error_rates([refs[u] for u in utts], [hyps.get(u, "") for u in utts])
    result["missing_hyps"] = len(missing)
    result["data"] = str(data_dir)
    atomic_write_json(decode_dir / "wer.json", result)
    summary = (f"%WER {100 * result['wer']:.2f} [ {result['substitutions'] + result['deletions'] + result['insertions']}"
               f" / {result['ref_words']}, {result['insertions']} ins, {result['deletions']} del, "
               f"{result['substitutions']} sub ]\n%CER {100 * result['cer']:.2f}\n"
               f"utterances {result['utterances']}, sentence errors {result.get('sentence_errors', 0)}, "
               f"missing hyps {len(missing)}\n")
    atomic_write_text(decode_dir / "wer.txt", summary)
    atomic_write_text(decode_dir / "alignments.txt", alignments_text(utts, refs, hyps))
    if exp_dir is not None:
        append_results(Path(exp_dir), name or decode_dir.name, result, description)
    return result


def alignments_text(utts: Sequence[str], refs: dict, hyps: dict) -> str:
    blocks = []
    for u in utts:
        r, h = refs[u], hyps.get(u, "")
        if not r.strip():
            blocks.append(f"{u}  (empty reference)\nHYP: {h}\n")
            continue
        o = jiwer.process_words(r, h)
        vis = jiwer.visualize_alignment(o, show_measures=False, skip_correct=False)
        body = "\n".join(line for line in vis.splitlines() if line.strip() and not line.startswith("==="))
        blocks.append(f"{u}  WER {100 * o.wer:.1f}% (S={o.substitutions} D={o.deletions} I={o.insertions})\n{body}\n")
    return "\n".join(blocks)


RESULTS_HEADER = ("| decode | WER % | CER % | sub | del | ins | words | utts | notes |\n"
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|\n")


def append_results(exp_dir: Path, name: str, r: dict, description: str = "") -> Path:
    """Add (or replace) the row ``name`` in ``exp_dir/RESULTS.md``."""
    path = exp_dir / "RESULTS.md"
    rows: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("| ") and not line.startswith("| decode") and "---" not in line:
                rows[line.split("|")[1].strip()] = line
    rows[name] = (f"| {name} | {100 * r['wer']:.2f} | {100 * r['cer']:.2f} | {r['substitutions']} | "
                  f"{r['deletions']} | {r['insertions']} | {r['ref_words']} | {r['utterances']} | {description} |")
    text = f"# Results: {exp_dir.name}\n\n" + RESULTS_HEADER + "\n".join(rows[k] for k in sorted(rows)) + "\n"
    atomic_write_text(path, text)
    return path


def add_arguments(p) -> None:
    p.add_argument("--data", required=True, help="data dir with the reference text")
    p.add_argument("--decode", required=True, help="decode dir with hyp")
    p.add_argument("--exp", default=None, help="experiment dir whose RESULTS.md gets a row")
    p.add_argument("--name", default=None, help="row name in RESULTS.md (default: decode dir name)")
    p.add_argument("--description", default="", help="notes column of the RESULTS.md row")


def run(args) -> int:
    r = score_dir(args.data, args.decode, args.exp, args.name, args.description)
    print(f"{args.name or Path(args.decode).name}: WER {100 * r['wer']:.2f}%  CER {100 * r['cer']:.2f}%  "
          f"({r['utterances']} utterances)")
    return 0
