"""``asr decode``: decode a data dir with a model package into ``OUT/hyp`` (Kaldi text format) and
``OUT/ctm`` (Kaldi CTM: ``UTT 1 START DURATION WORD CONFIDENCE``, times from the utterance start,
from the forced alignment of each best hypothesis; :mod:`asr.decode.align`).

Features come from the data dir's dumped ``feats.scp`` when its ``feats.yaml`` equals the
package's feature settings, otherwise they are computed from the audio. Emissions are computed in
length-sorted batches; greedy or beam(+LM) decoding per utterance. ``--nj N --job J`` decodes the
J-th of N shards into ``OUT/hyp.J`` (and ``OUT/ctm.J``); ``--nj N`` without ``--job`` decodes every
shard in turn and merges them into ``OUT/hyp`` and ``OUT/ctm``. Output files are written atomically; an ``--out`` that cannot be a
folder (an existing file) is refused before anything is decoded.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_json, atomic_write_text, check_output_dir, clean_stale_temps
from ..errors import ConfigError, DataDirError


def load_features(model, data_dir: Path, utts: list[str]) -> list[np.ndarray]:
    """Normalised features for ``utts``: dumped ones when compatible, else from audio."""
    from .. import config as config_mod
    from ..data.datadir import DataDir, read_kaldi_map
    from ..data.dataset import load_feature_file
    from ..features import FeatureConfig

    scp, fy = data_dir / "feats.scp", data_dir / "feats.yaml"
    if scp.is_file() and fy.is_file() and config_mod.load(FeatureConfig, fy) == model.feature_config:
        feats = read_kaldi_map(scp)
        missing = [u for u in utts if u not in feats]
        if not missing:
            out = []
            for u in utts:
                out.append(model.normalize(load_feature_file(feats[u], u, model.feature_config.dim)))
            return out
    dd = DataDir.load(data_dir)
    return [model.compute_features(dd.audio(u, model.sample_rate)) for u in utts]


def decode_dir(model, data_dir: str | Path, out_dir: str | Path, nj: int = 1, job: int = 0,
               progress: bool = True) -> dict:
    from tqdm import tqdm

    from ..data.datadir import read_kaldi_map

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    name = "hyp" if nj == 1 else f"hyp.{job + 1}"
    ctm_name = "ctm" if nj == 1 else f"ctm.{job + 1}"
    stats_name = "decode_stats.json" if nj == 1 else f"decode_stats.{job + 1}.json"
    clean_stale_temps(out_dir, [name, ctm_name, stats_name])  # partial writes of a killed run of this job
    wav = data_dir / "wav.scp"
    scp = data_dir / "feats.scp"
    seg = data_dir / "segments"  # with segments, utterances are its ids (wav.scp lists recordings)
    src = scp if scp.is_file() else seg if seg.is_file() else wav
    if not src.is_file():
        raise DataDirError(f"{data_dir} has neither feats.scp nor wav.scp: not a data dir")
    utts = sorted(read_kaldi_map(src))[job::nj]
    t0 = time.time()
    feats = load_features(model, data_dir, utts)
    audio_sec = sum(len(f) for f in feats) * model.frame_shift
    lps = model.emissions(feats)
    t_am = time.time() - t0
    hyps: list[str] = []
    words: list[list] = []
    chunk = 32
    with tqdm(total=len(lps), desc=f"decode {data_dir.name}", unit="utt", disable=not progress or None,
              leave=False) as bar:
        for i in range(0, len(lps), chunk):
            for nb, w in model.decode_words(lps[i:i + chunk], nbest=1, chunk=chunk):
                hyps.append(nb[0].text if nb else "")
                words.append(w)
            bar.update(len(lps[i:i + chunk]))
    elapsed = time.time() - t0
    from ..recognizer.formats import ctm_lines

    # ctm first: a complete hyp (what a rerun and the scorer look for) means the ctm is complete too
    atomic_write_text(out_dir / ctm_name, "".join(ctm_lines(u, w) for u, w in zip(utts, words)))
    atomic_write_text(out_dir / name, "".join(f"{u} {h}\n".replace(" \n", "\n") for u, h in zip(utts, hyps)))
    stats = {"utterances": len(utts), "audio_seconds": round(audio_sec, 2), "seconds": round(elapsed, 2),
             "acoustic_seconds": round(t_am, 2), "rtf": round(elapsed / max(audio_sec, 1e-9), 5),
             "method": model.decode_config.method, "beam": model.decode_config.beam,
             "alpha": model.decode_config.alpha, "beta": model.decode_config.beta, "lm": model.lm is not None,
             "nbest": model.decode_config.nbest, "hotwords": len(model.hotwords),
             "lexicon": len(model.lexicon) if model.lexicon is not None else None}
    atomic_write_json(out_dir / stats_name, stats)
    return stats


def merge(out_dir: Path, nj: int) -> None:
    """``hyp.1..N`` into ``hyp`` (sorted by utterance) and ``ctm.1..N`` into ``ctm`` (by utterance, then time)."""
    parts = [out_dir / f"{kind}.{j}" for kind in ("hyp", "ctm") for j in range(1, nj + 1)]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise DataDirError(f"cannot merge: missing shard(s) {missing}")
    for kind in ("ctm", "hyp"):  # hyp last, as decode_dir writes them
        lines = [line for p in parts if p.name.startswith(kind + ".")
                 for line in p.read_text(encoding="utf-8").splitlines() if line]
        if kind == "hyp":
            lines.sort()
        else:
            lines.sort(key=lambda line: (line.split()[0], float(line.split()[2])))
        clean_stale_temps(out_dir, [kind])
        atomic_write_text(out_dir / kind, "".join(line + "\n" for line in lines))


def add_arguments(p) -> None:
    from .hotwords import add_search_arguments

    p.add_argument("--model", required=True, help="model package dir")
    p.add_argument("--data", required=True, help="data dir to decode")
    p.add_argument("--out", required=True, help="output dir (gets hyp, ctm, decode_stats.json)")
    p.add_argument("--method", choices=["greedy", "beam"], default=None, help="override decode.yaml's method")
    p.add_argument("--beam", type=int, default=None)
    p.add_argument("--alpha", type=float, default=None, help="LM weight")
    p.add_argument("--beta", type=float, default=None, help="word bonus")
    p.add_argument("--no-lm", action="store_true", help="beam search without the package's LM")
    add_search_arguments(p)
    p.add_argument("--conf", default=None, help="decode settings YAML (DecodeConfig) instead of the package's decode.yaml")
    p.add_argument("--device", default="cpu")
    p.add_argument("--nj", type=int, default=1, help="number of shards")
    p.add_argument("--job", type=int, default=None, help="shard index 1..nj to decode (default: all, merged)")
    p.add_argument("overrides", nargs="*", help="--decode.KEY VALUE (after --), e.g. -- --decode.nbest 5")


def run(args) -> int:
    from .. import config as config_mod
    from ..recognizer import Recognizer
    from .config import DecodeConfig, override
    from .hotwords import search_options

    # settings: --conf YAML (else the package's decode.yaml), then -- --decode.KEY VALUE, then the
    # flags; each field is checked alone, so bad options are refused before anything is loaded
    base = config_mod.load(DecodeConfig, args.conf) if args.conf else None
    ov = config_mod.split_overrides(args.overrides, ("decode",)).get("decode", {})
    typed = config_mod.load(DecodeConfig, None, ov)
    changes = {k: getattr(typed, k) for k in ov}
    changes.update({k: v for k, v in dict(method=args.method, beam=args.beam, alpha=args.alpha, beta=args.beta,
                                          use_lm=False if args.no_lm else None, nbest=args.nbest).items()
                    if v is not None})
    override(DecodeConfig(), "command line", **changes)
    words = search_options(args, Path(args.model))  # --hotwords / --lexicon files
    changes.update({k: words[k] for k in ("hotwords", "lexicon") if k in words})
    if args.nj < 1 or (args.job is not None and not 1 <= args.job <= args.nj):
        raise ConfigError(f"--nj {args.nj} --job {args.job}: need nj >= 1 and job in 1..nj")
    out = Path(args.out)
    check_output_dir(out)
    model = Recognizer(args.model, device=args.device, decode=base, **changes)
    jobs = [args.job - 1] if args.job else list(range(args.nj))
    for j in jobs:
        s = decode_dir(model, args.data, out, nj=args.nj, job=j)
        print(f"decoded {s['utterances']} utterances of {args.data} ({s['method']}, lm={s['lm']}) "
              f"in {s['seconds']:.1f}s, RTF {s['rtf']:.4f} -> {out}")
    if args.nj > 1 and not args.job:
        merge(out, args.nj)
    return 0
