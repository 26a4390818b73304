"""Generate the synthetic English speech corpus: plan -> parallel synthesis -> Kaldi data dirs.

``python -m asr.synthesis.generate --out-dir recipes/tts_en/data --wav-dir recipes/tts_en/db/tts_corpus
--hours 3 --nj 2``

Deterministic given ``--seed`` (and the text sources / engine versions): the plan (which sentence,
voice, speaking rate and augmentation every utterance gets) is drawn from generators seeded per
utterance. Resumable: every wav's file name carries a hash of its full specification, existing
ones are skipped, writes are atomic. Splits are disjoint by voice AND by sentence (voices.py holds
the held-out voice lists); test and dev sentences are drawn first, so they stay the same whatever
``--hours`` is. Outputs, under ``--out-dir``:

- ``{train,dev,test}/``: wav.scp (absolute paths), text, utt2spk (speaker = voice), spk2utt, utt2dur
- ``lm_text/{train,dev}.txt``: all usable normalised sentences except every dev/test sentence
- ``local/corpus/{split}.jsonl``: per-utterance voice, engine, spoken text, synthesis/augment params
- ``corpus_stats.json`` + ``corpus_stats.md``
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import soundfile as sf

from ..atomic import atomic_write_json, atomic_write_text, clean_stale_temps
from ..audio import SAMPLE_RATE, write_wav
from ..importers.writer import Utt, write_datadir, write_lm_text
from ..errors import ASRError
from . import augment as aug
from .synth import SynthesisError, sample_engine_params, synth_espeak, synthesize_batch
from .text_sources import FORTUNES_DIR, Sentence, load_sentences
from .voices import DEFAULT_ENGINES, ENGINES, Voice, all_voices, engine_available, missing_voices

GENERATOR_VERSION = 1
SPLITS = ("train", "dev", "test")
SPLIT_CODE = {"train": 0, "dev": 1, "test": 2}
# share of each split's audio per engine (renormalised over the engines that have voices there)
DEFAULT_ENGINE_WEIGHTS = {"espeak": 0.45, "flite": 0.2, "festival": 0.15, "piper": 0.2}
# the share of an engine outside the default list when it is asked for without a weight
OPTIONAL_ENGINE_WEIGHTS = {"kokoro": 0.2}
# seconds per word + fixed overhead, to plan hours before synthesising: calibrated on the default
# corpus (all engines, rate variation, speed perturbation and padding included; 10.8 words/utt ->
# 4.08 s). Actual hours land within a few % of the target.
SEC_PER_WORD = 0.318
SEC_OVERHEAD = 0.66
FESTIVAL_BATCH = 16
OTHER_BATCH = 6


class CorpusError(ASRError):
    """The corpus could not be generated as asked (no engine, too many failures, ...)."""


@dataclass(frozen=True)
class CorpusConfig:
    out_dir: str                      # data root: {train,dev,test}/, lm_text/, corpus_stats.*
    wav_dir: str                      # where the wavs go (one folder per split/voice)
    text_cache: str | None = None     # cache for downloaded text (gensim's Lee corpus); None: skip it
    hours: float = 3.0                # train hours
    dev_hours: float = 0.15
    test_hours: float = 0.15
    seed: int = 0
    nj: int = 2
    engines: tuple[str, ...] = DEFAULT_ENGINES
    sources: tuple[str, ...] = ("fortunes", "lee")
    augment: bool = True
    # augmentation kinds left out of the train split only (ablations: dev/test stay as they are);
    # any of augment.KINDS. The random draws are made as usual and then dropped, so every other
    # utterance and setting is unchanged.
    drop_train_augment: tuple[str, ...] = ()
    # share of the train utterances passed through a lossy codec (augment.CODECS: GSM, mu-law, MP3,
    # Opus, Vorbis); train only, drawn from a generator of its own, so every other draw is unchanged
    train_codec_prob: float = 0.0
    # RMS level (dBFS, e.g. -55) of low-level white/pink noise in every utterance's leading/trailing
    # padding instead of exact zeros (a value no recording has); all splits; None: zeros. Its draws
    # come from a generator of its own, so every other draw is unchanged
    pad_noise_db: float | None = None
    lm_dev_fraction: float = 0.02
    prune: bool = True                # delete wavs in wav_dir that the plan no longer uses
    engine_weights: tuple[tuple[str, float], ...] = tuple(DEFAULT_ENGINE_WEIGHTS.items())  # audio share
    fortunes_dir: str = FORTUNES_DIR  # Debian fortunes (the main text source)
    babble_tracks: int = 6            # babble noise tracks (each 5 espeak talkers, 12 s)


@dataclass
class UttSpec:
    utt: str
    split: str
    voice: str
    engine: str
    voice_name: str
    spoken: str
    text: str
    source: str
    sentence: int                     # index into the sentence pool
    engine_params: dict
    augment: dict
    wav: str = ""

    def digest(self) -> str:
        d = {k: v for k, v in asdict(self).items() if k not in ("utt", "wav")}
        d["version"] = GENERATOR_VERSION
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


# ------------------------------------------------------------------------------------------ plan
def _check_drop_kinds(kinds: Sequence[str], what: str = "drop_train_augment") -> None:
    bad = [k for k in kinds if k not in aug.KINDS]
    if bad:
        raise CorpusError(f"{what}: unknown kind(s) {bad}; choose from {list(aug.KINDS)}")


def _est_seconds(s: Sentence) -> float:
    return SEC_PER_WORD * len(s.text.split()) + SEC_OVERHEAD


def _take(order: list[int], start: int, sentences: Sequence[Sentence], seconds: float) -> tuple[list[int], int]:
    out: list[int] = []
    total = 0.0
    i = start
    while total < seconds and i < len(order):
        out.append(order[i])
        total += _est_seconds(sentences[order[i]])
        i += 1
    return out, i


def split_sentences(sentences: Sequence[Sentence], cfg: CorpusConfig) -> dict[str, list[int]]:
    """Sentence indices per split, disjoint; test then dev are drawn first (stable across --hours).

    Train takes fresh sentences until the pool runs out, then cycles over its own sentences again
    (spoken by other voices).
    """
    order = list(np.random.default_rng([cfg.seed, 7]).permutation(len(sentences)))
    test, i = _take(order, 0, sentences, cfg.test_hours * 3600)
    dev, i = _take(order, i, sentences, cfg.dev_hours * 3600)
    train, j = _take(order, i, sentences, cfg.hours * 3600)
    if not train or (j >= len(order) and sum(_est_seconds(sentences[k]) for k in train) < cfg.hours * 3600):
        pool = order[i:]
        if not pool:
            raise CorpusError(f"only {len(sentences)} sentences: none left for train after dev/test")
        need = cfg.hours * 3600 - sum(_est_seconds(sentences[k]) for k in train)
        k = 0
        while need > 0:
            train.append(pool[k % len(pool)])
            need -= _est_seconds(sentences[pool[k % len(pool)]])
            k += 1
        print(f"corpus: the text pool ({len(sentences)} sentences) is smaller than {cfg.hours} h; "
              "train sentences repeat (with other voices)", file=sys.stderr)
    return {"train": train, "dev": dev, "test": test}


def make_plan(sentences: Sequence[Sentence], cfg: CorpusConfig, engines: Sequence[str],
              wav_dir: Path, exclude_voices: Sequence[str] = ()) -> dict[str, list[UttSpec]]:
    voices = [v for v in all_voices() if v.engine in engines and v.id not in set(exclude_voices)]
    by_split_engine: dict[tuple[str, str], list[Voice]] = defaultdict(list)
    for v in voices:
        by_split_engine[(v.split, v.engine)].append(v)
    acfg = aug.AugmentConfig() if cfg.augment else aug.AugmentConfig.none()
    _check_drop_kinds(cfg.drop_train_augment)
    if not 0.0 <= cfg.train_codec_prob <= 1.0:
        raise CorpusError(f"train_codec_prob: must be within [0, 1], got {cfg.train_codec_prob}")
    if cfg.pad_noise_db is not None:
        if not -120.0 <= cfg.pad_noise_db < 0.0:
            raise CorpusError(f"pad_noise_db: an RMS level in dBFS within [-120, 0) (e.g. -55), got {cfg.pad_noise_db}")
        acfg = replace(acfg, pad_noise_db=float(cfg.pad_noise_db))
    train_acfg = replace(acfg, p_codec=cfg.train_codec_prob)
    plan: dict[str, list[UttSpec]] = {}
    bank = babble_key(cfg, len(sentences))
    for split, sent_ids in split_sentences(sentences, cfg).items():
        engs = [e for e in engines if by_split_engine.get((split, e))]
        if not engs:
            raise CorpusError(f"no voice for split {split!r} among engines {list(engines)}")
        weights = {**OPTIONAL_ENGINE_WEIGHTS, **dict(cfg.engine_weights)}
        w = np.array([weights.get(e, 0.0) for e in engs], dtype=float)
        if w.sum() <= 0:
            raise CorpusError(f"split {split!r}: engines {engs} all have weight 0 (--engine-weights)")
        w /= w.sum()
        specs: list[UttSpec] = []
        used: set[str] = set()
        for n, sid in enumerate(sent_ids):
            rng = np.random.default_rng([cfg.seed, SPLIT_CODE[split], n])
            eng = engs[int(rng.choice(len(engs), p=w))]
            cands = by_split_engine[(split, eng)]
            voice = cands[int(rng.integers(0, len(cands)))]
            s = sentences[sid]
            utt = f"{voice.id}-{sid:05d}"
            k = 1
            while utt in used:
                utt = f"{voice.id}-{sid:05d}r{k}"
                k += 1
            used.add(utt)
            spec = UttSpec(utt=utt, split=split, voice=voice.id, engine=voice.engine, voice_name=voice.name,
                           spoken=s.spoken, text=s.text, source=s.source, sentence=int(sid),
                           engine_params=sample_engine_params(voice, rng),
                           augment=aug.sample_augment(rng, train_acfg if split == "train" else acfg))
            if split == "train" and cfg.drop_train_augment:
                spec.augment = aug.without(spec.augment, cfg.drop_train_augment)
            if spec.augment.get("noise") == "babble":
                spec.augment["babble_bank"] = bank
            spec.wav = str(wav_dir / split / voice.id / f"{utt}_{spec.digest()}.wav")
            specs.append(spec)
        plan[split] = sorted(specs, key=lambda u: u.utt)
    return plan


# --------------------------------------------------------------------------------------- workers
_W: dict[str, Any] = {}


def _init_worker(noise_bank: list[np.ndarray], tmp_root: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _W["noise_bank"] = noise_bank
    _W["tmp"] = Path(tempfile.mkdtemp(prefix=f"worker{os.getpid()}-", dir=tmp_root))


def render(specs: Sequence[UttSpec], noise_bank: Sequence[np.ndarray], workdir: Path) -> list[tuple[str, float, str | None, float]]:
    """Synthesise + augment + write a batch of one voice; returns (utt, seconds, error, cpu seconds).

    CPU seconds are this process's plus its finished subprocesses' (the engines), so they measure the
    work whatever the machine's load.
    """
    t0 = _cpu_seconds()
    out: list[tuple[str, float, str | None, float]] = []
    voice = Voice(specs[0].voice, specs[0].engine, specs[0].voice_name, specs[0].split)
    items = [(s.spoken, s.engine_params) for s in specs]
    try:
        audio = synthesize_batch(voice, items, workdir)
    except SynthesisError as e:
        if len(specs) == 1:
            return [(specs[0].utt, 0.0, str(e), _cpu_seconds() - t0)]
        # find the one that failed: one at a time
        res = []
        for s in specs:
            res.extend(render([s], noise_bank, workdir))
        return res
    for s, (x, sr) in zip(specs, audio):
        speed = Fraction(str(s.augment.get("speed", 1.0)))
        y = aug.resample(x, Fraction(sr) * speed, SAMPLE_RATE)
        y = aug.apply_augment(y, SAMPLE_RATE, s.augment, noise_bank)
        write_wav(s.wav, y, SAMPLE_RATE)
        out.append((s.utt, y.size / SAMPLE_RATE, None, 0.0))
    cpu = (_cpu_seconds() - t0) / len(out)
    return [(u, d, e, cpu) for u, d, e, _ in out]


def _cpu_seconds() -> float:
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def _render_job(specs: list[UttSpec]) -> list[tuple[str, float, str | None, float]]:
    return render(specs, _W["noise_bank"], _W["tmp"])


def _preflight(engine: str) -> tuple[str, str | None]:
    ok, why = engine_available(engine)
    if not ok:
        return engine, why
    v = next(v for v in all_voices() if v.engine == engine and v.split == "train")
    try:
        synthesize_batch(v, [("This is a test.", {})], _W["tmp"])
    except SynthesisError as e:
        return engine, str(e)
    return engine, None


def _jobs(specs: Iterable[UttSpec]) -> list[list[UttSpec]]:
    by_voice: dict[str, list[UttSpec]] = defaultdict(list)
    for s in specs:
        by_voice[s.voice].append(s)
    slow, fast = [], []
    for vid in sorted(by_voice):
        ss = by_voice[vid]
        if ss[0].engine == "festival":
            slow += [ss[i:i + FESTIVAL_BATCH] for i in range(0, len(ss), FESTIVAL_BATCH)]
        elif ss[0].engine in ("piper", "kokoro"):
            slow += [ss[i:i + OTHER_BATCH] for i in range(0, len(ss), OTHER_BATCH)]
        else:
            fast += [ss[i:i + OTHER_BATCH] for i in range(0, len(ss), OTHER_BATCH)]
    return slow + fast  # slow ones first so the pool does not end on a long tail


# ---------------------------------------------------------------------------------- noise bank
def babble_key(cfg: CorpusConfig, n_sentences: int) -> str:
    """Identifies the babble bank's content (part of every babble-noised utterance's spec)."""
    return hashlib.sha1(json.dumps([cfg.seed, cfg.babble_tracks, GENERATOR_VERSION, n_sentences]).encode()).hexdigest()[:10]


def make_noise_bank(sentences: Sequence[Sentence], exclude: set[int], cfg: CorpusConfig,
                    wav_dir: Path, talkers: int = 5, seconds: float = 12.0) -> list[np.ndarray]:
    """Babble tracks: several espeak-ng train voices talking at once (LM-only sentences)."""
    if "espeak" not in cfg.engines or not engine_available("espeak")[0]:
        return []
    n_tracks = cfg.babble_tracks
    rng = np.random.default_rng([cfg.seed, 99])
    pool = [i for i in range(len(sentences)) if i not in exclude]
    voices = [v for v in all_voices() if v.engine == "espeak" and v.split == "train"]
    key = babble_key(cfg, len(sentences))
    folder = wav_dir / "noise"
    bank = []
    tmp = Path(tempfile.mkdtemp(prefix="asr-babble-"))
    try:
        for t in range(n_tracks):
            path = folder / f"babble_{t}_{key}.wav"
            mix = np.zeros(int(seconds * SAMPLE_RATE))
            picks = [(voices[int(rng.integers(0, len(voices)))], [sentences[pool[int(rng.integers(0, len(pool)))]]
                      for _ in range(4)]) for _ in range(talkers)]
            if path.is_file():
                bank.append(sf.read(str(path), dtype="float32")[0])
                continue
            for voice, sents in picks:
                track = []
                for s in sents:
                    x, sr = synth_espeak(voice.name, s.spoken, tmp / "b.wav")
                    track.append(aug.resample(x, sr, SAMPLE_RATE))
                y = np.concatenate(track)
                y = np.roll(np.resize(y, mix.size), int(rng.integers(0, mix.size)))
                mix += y / (np.std(y) + 1e-9)
            mix = (0.5 * mix / (np.abs(mix).max() + 1e-9)).astype(np.float32)
            write_wav(path, mix, SAMPLE_RATE)
            bank.append(sf.read(str(path), dtype="float32")[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return bank


# -------------------------------------------------------------------------------------- outputs
def split_lm_text(sentences: Sequence[Sentence], held_out: set[str], cfg: CorpusConfig) -> tuple[list[str], list[str]]:
    """(train, dev) LM sentences: every sentence but the dev/test ones, a seeded ``lm_dev_fraction`` to dev."""
    texts = [s.text for s in sentences if s.text not in held_out]
    order = np.random.default_rng([cfg.seed, 11]).permutation(len(texts))
    n_dev = max(1, int(round(cfg.lm_dev_fraction * len(texts)))) if len(texts) > 1 else 0
    return [texts[i] for i in order[n_dev:]], [texts[i] for i in order[:n_dev]]


def _log(msg: str) -> None:
    print(f"corpus: {msg}", file=sys.stderr)


def compute_stats(plan: dict[str, list[UttSpec]], durs: dict[str, float]) -> dict:
    stats: dict[str, Any] = {"splits": {}}
    train_vocab: set[str] = set()
    for split in SPLITS:
        specs = [s for s in plan.get(split, []) if s.utt in durs]
        words = [w for s in specs for w in s.text.split()]
        vocab = set(words)
        if split == "train":
            train_vocab = vocab
        eng: dict[str, dict] = {}
        for e in sorted({s.engine for s in specs}):
            es = [s for s in specs if s.engine == e]
            eng[e] = {"utterances": len(es), "hours": round(sum(durs[s.utt] for s in es) / 3600, 4),
                      "voices": len({s.voice for s in es})}
        a = Counter()
        for s in specs:
            if "noise" in s.augment:
                a["noise_" + s.augment["noise"]] += 1
            a["reverb"] += "rt60" in s.augment
            a["bandlimit"] += "cutoff" in s.augment
            a["speed"] += s.augment.get("speed", 1.0) != 1.0
            if "codec" in s.augment:
                a["codec_" + s.augment["codec"]] += 1
        secs = [durs[s.utt] for s in specs]
        d = {
            "utterances": len(specs),
            "hours": round(sum(secs) / 3600, 4),
            "mean_seconds": round(float(np.mean(secs)), 3) if secs else 0.0,
            "max_seconds": round(float(np.max(secs)), 3) if secs else 0.0,
            "voices": len({s.voice for s in specs}),
            "sentences": len({s.sentence for s in specs}),
            "words": len(words),
            "vocabulary": len(vocab),
            "engines": eng,
            "augmentation": dict(sorted((k, v) for k, v in a.items() if v)),
        }
        if split != "train":
            d["oov_rate_vs_train"] = round(sum(w not in train_vocab for w in words) / max(1, len(words)), 4)
            d["voice_ids"] = sorted({s.voice for s in specs})
        stats["splits"][split] = d
    sets = {sp: ({s.voice for s in plan[sp]}, {s.text for s in plan[sp]}) for sp in plan}
    stats["disjoint"] = {
        f"{a}-{b}": {"voices": not (sets[a][0] & sets[b][0]), "sentences": not (sets[a][1] & sets[b][1])}
        for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")) if a in sets and b in sets
    }
    return stats


def stats_markdown(st: dict) -> str:
    g = st["generation"]
    lines = ["# Synthetic corpus (recipes/tts_en stage 0)", "",
             f"Generated with seed {st['config']['seed']}, target {st['config']['hours']} h train, "
             f"engines {', '.join(st['engines_used'])}"
             + (f" (skipped: {'; '.join(f'{k}: {v}' for k, v in st['engines_skipped'].items())})" if st["engines_skipped"] else "")
             + "."
             + (f" Left out of the train split (ablation): {', '.join(st['config']['drop_train_augment'])}."
                if st["config"].get("drop_train_augment") else "")
             + (f" Lossy codec on {100 * st['config']['train_codec_prob']:g} % of the train utterances."
                if st["config"].get("train_codec_prob") else "")
             + (f" Padding: white/pink noise at {st['config']['pad_noise_db']:g} dBFS RMS instead of exact zeros."
                if st["config"].get("pad_noise_db") is not None else ""), "",
             "| split | utts | hours | voices | sentences | words | vocab | OOV vs train | engines (utts / h / voices) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for sp, d in st["splits"].items():
        eng = "; ".join(f"{e} {v['utterances']}/{v['hours']:.2f}/{v['voices']}" for e, v in d["engines"].items())
        oov = f"{100 * d['oov_rate_vs_train']:.1f} %" if "oov_rate_vs_train" in d else "-"
        lines.append(f"| {sp} | {d['utterances']} | {d['hours']:.3f} | {d['voices']} | {d['sentences']} | "
                     f"{d['words']} | {d['vocabulary']} | {oov} | {eng} |")
    lines += ["", "Augmentation counts per split: "
              + "; ".join(f"{sp}: " + ", ".join(f"{k} {v}" for k, v in d["augmentation"].items())
                          for sp, d in st["splits"].items()), ""]
    lines += ["Disjointness (voices, sentences): "
              + ", ".join(f"{k}: {'ok' if v['voices'] and v['sentences'] else 'OVERLAP'}" for k, v in st["disjoint"].items()), ""]
    lm = st["lm_text"]
    lines += [f"LM text (all usable sentences minus dev/test ones): train {lm['train']['sentences']} sentences "
              f"/ {lm['train']['words']} words, dev {lm['dev']['sentences']} / {lm['dev']['words']}.", ""]
    lines += [f"Generation: {g['generated_utterances']} utterances synthesised ({g['generated_hours']:.3f} h) "
              f"and {g['skipped_utterances']} already present, in {g['wall_seconds']:.1f} s with {g['nj']} "
              f"jobs ({g['x_realtime']:.0f}x real time); {g['failed_utterances']} failed. CPU: "
              f"{g.get('cpu_seconds', 0):.0f} s; audio seconds per CPU second by engine: "
              + ", ".join(f"{e} {v['x_realtime_per_cpu']}" for e, v in g.get("per_engine", {}).items())
              + f" (load average at the end {g.get('load_average_at_end')}).", ""]
    hist = st.get("generation_history", [])
    if len(hist) > 1:
        lines += [f"Runs that built this corpus: {len(hist)}; synthesised in total "
                  f"{sum(h['generated_utterances'] for h in hist)} utterances / "
                  f"{sum(h['generated_hours'] for h in hist):.3f} h in "
                  f"{sum(h['wall_seconds'] for h in hist):.0f} s wall, "
                  f"{sum(h.get('cpu_seconds', 0) for h in hist):.0f} CPU s.", ""]
    for sp in ("dev", "test"):
        if sp in st["splits"]:
            lines.append(f"{sp} voices: {', '.join(st['splits'][sp].get('voice_ids', []))}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ main
def generate(cfg: CorpusConfig, progress: bool = True) -> dict:
    t0 = time.time()
    wav_dir = Path(cfg.wav_dir)
    wav_dir.mkdir(parents=True, exist_ok=True)
    sentences = load_sentences(cfg.sources, cache_dir=cfg.text_cache, fortunes_dir=cfg.fortunes_dir)
    if not sentences:
        raise CorpusError(f"no usable sentences from sources {list(cfg.sources)}")
    tmp_root = tempfile.mkdtemp(prefix="asr-corpus-")  # engines' scratch files; removed at the end
    try:
        return _generate(cfg, sentences, tmp_root, t0, progress)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


def _generate(cfg: CorpusConfig, sentences: list[Sentence], tmp_root: str, t0: float, progress: bool) -> dict:
    out_dir, wav_dir = Path(cfg.out_dir), Path(cfg.wav_dir)
    ctx = mp.get_context("fork")
    with ctx.Pool(max(1, cfg.nj), initializer=_init_worker, initargs=([], tmp_root)) as pool:
        checks = dict(pool.map(_preflight, list(cfg.engines)))
    engines = [e for e in cfg.engines if checks.get(e) is None]
    skipped = {e: checks[e] for e in cfg.engines if checks.get(e) is not None}
    for e, why in skipped.items():
        print(f"corpus: engine {e} skipped: {why}", file=sys.stderr)
    if not engines:
        raise CorpusError(f"no TTS engine works ({skipped}); apt install espeak-ng flite")
    missing = [v.id for v in missing_voices([v for v in all_voices() if v.engine in engines])]
    if missing:
        print(f"corpus: {len(missing)} catalogue voices are not installed here and are left out: "
              f"{', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''}", file=sys.stderr)
    plan = make_plan(sentences, cfg, engines, wav_dir, exclude_voices=missing)
    held = {s.sentence for sp in ("dev", "test") for s in plan[sp]}
    noise_bank = make_noise_bank(sentences, held | {s.sentence for s in plan["train"]}, cfg, wav_dir) if cfg.augment else []

    all_specs = [s for sp in SPLITS for s in plan[sp]]
    for folder in {Path(s.wav).parent for s in all_specs}:
        clean_stale_temps(folder)  # partial writes of a killed run
    durs: dict[str, float] = {}
    todo = []
    for s in all_specs:
        if os.path.isfile(s.wav):
            try:
                durs[s.utt] = sf.info(s.wav).frames / SAMPLE_RATE
                continue
            except RuntimeError:
                pass
        todo.append(s)
    print(f"corpus: {len(all_specs)} utterances planned "
          + ", ".join(f"{sp} {len(plan[sp])}" for sp in SPLITS)
          + f"; {len(all_specs) - len(todo)} already on disk, {len(todo)} to synthesise with {cfg.nj} jobs",
          file=sys.stderr)
    failures: dict[str, str] = {}
    gen_secs = 0.0
    engine_of = {s.utt: s.engine for s in all_specs}
    eng_audio: Counter = Counter()
    eng_cpu: Counter = Counter()
    t_synth = time.time()
    if todo:
        from tqdm import tqdm

        jobs = _jobs(todo)
        with ctx.Pool(max(1, cfg.nj), initializer=_init_worker, initargs=(noise_bank, tmp_root)) as pool, \
                tqdm(total=len(todo), unit="utt", desc="synthesising", disable=not progress,
                     file=sys.stderr, mininterval=2.0 if sys.stderr.isatty() else 30.0) as bar:
            for res in pool.imap_unordered(_render_job, jobs):
                for utt, secs, err, cpu in res:
                    eng_cpu[engine_of[utt]] += cpu
                    eng_audio[engine_of[utt]] += secs
                    if err is None:
                        durs[utt] = secs
                        gen_secs += secs
                    else:
                        failures[utt] = err
                bar.update(len(res))
                bar.set_postfix(audio_h=f"{gen_secs / 3600:.2f}", failed=len(failures))
    synth_wall = time.time() - t_synth
    if failures:
        for utt, err in list(failures.items())[:10]:
            print(f"corpus: failed {utt}: {err}", file=sys.stderr)
        if len(failures) > 0.05 * len(all_specs):
            raise CorpusError(f"{len(failures)} of {len(all_specs)} utterances failed to synthesise "
                              f"(first: {next(iter(failures.values()))})")

    for sp in SPLITS:
        ok = [u for u in plan[sp] if u.utt in durs]
        write_datadir(out_dir / sp, [Utt(u.utt, str(Path(u.wav).resolve()), u.text, u.voice) for u in ok],
                      normalize=False, utt2dur={u.utt: durs[u.utt] for u in ok}, log=_log)
        meta = out_dir / "local" / "corpus" / f"{sp}.jsonl"
        atomic_write_text(meta, "".join(json.dumps({**asdict(s), "seconds": round(durs.get(s.utt, 0.0), 3)})
                                          + "\n" for s in plan[sp]))
    held_text = {s.text for sp in ("dev", "test") for s in plan[sp]}
    lm_train, lm_dev = split_lm_text(sentences, held_text, cfg)
    write_lm_text(out_dir / "lm_text", lm_train, lm_dev, log=_log)
    lm = {name: {"sentences": len(t), "words": sum(len(x.split()) for x in t)}
          for name, t in (("train", lm_train), ("dev", lm_dev))}

    if cfg.prune:
        keep = {str(Path(s.wav)) for s in all_specs}
        n_pruned = 0
        for sp in SPLITS:
            for p in (wav_dir / sp).glob("*/*.wav") if (wav_dir / sp).is_dir() else []:
                if str(p) not in keep:
                    p.unlink()
                    n_pruned += 1
        if n_pruned:
            print(f"corpus: removed {n_pruned} wavs the current plan no longer uses", file=sys.stderr)

    st = compute_stats(plan, durs)
    wall = time.time() - t0
    st["config"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
    st["engines_used"] = engines
    st["engines_skipped"] = skipped
    st["voices_not_installed"] = missing
    st["text_pool"] = {"sentences": len(sentences),
                       "by_source": dict(Counter(s.source.split("/")[0] for s in sentences))}
    st["lm_text"] = lm
    st["generation"] = {
        "generator_version": GENERATOR_VERSION,
        "nj": cfg.nj,
        "wall_seconds": round(wall, 1),
        "synthesis_wall_seconds": round(synth_wall, 1),
        "generated_utterances": len(todo) - len(failures),
        "generated_hours": round(gen_secs / 3600, 4),
        "skipped_utterances": len(all_specs) - len(todo),
        "failed_utterances": len(failures),
        "x_realtime": round(gen_secs / synth_wall, 1) if gen_secs and synth_wall > 0 else 0.0,
        "x_realtime_per_job": round(gen_secs / synth_wall / max(1, cfg.nj), 1) if gen_secs and synth_wall > 0 else 0.0,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # per engine: audio made, CPU seconds spent (synthesis + augmentation + writing, engine
        # subprocesses included) and audio seconds per CPU second (independent of machine load)
        "per_engine": {e: {"audio_hours": round(eng_audio[e] / 3600, 4), "cpu_seconds": round(eng_cpu[e], 1),
                           "x_realtime_per_cpu": round(eng_audio[e] / eng_cpu[e], 1) if eng_cpu[e] else 0.0}
                       for e in sorted(eng_cpu)},
        "cpu_seconds": round(sum(eng_cpu.values()), 1),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    st["held_out_voices_rule"] = (
        "espeak-ng variants in asr/synthesis/voices.py ESPEAK_DEV_VARIANTS / ESPEAK_TEST_VARIANTS (all "
        "dialects); flite rms (dev), flite awb (test), festival ked_diphone (test); piper joe train only"
        + ("; kokoro: jf_tebukuro never in train, dev/test are mixtures led by it (voices.py)"
           if "kokoro" in engines else ""))
    # earlier runs that built this same corpus (resumed or regenerated parts): keep their records
    history: list = []
    try:
        prev = json.loads((out_dir / "corpus_stats.json").read_text())
        if _set_fields(prev.get("config") or {}) == _set_fields(json.loads(json.dumps(st["config"]))):
            history = prev.get("generation_history") or [prev["generation"]]
    except (OSError, ValueError, KeyError):
        pass
    st["generation_history"] = (history + [st["generation"]])[-20:]
    atomic_write_json(out_dir / "corpus_stats.json", st)
    atomic_write_text(out_dir / "corpus_stats.md", stats_markdown(st))
    return st


def _set_fields(config: dict) -> dict:
    """A recorded config without its None fields (a field added later reads as absent in older stats)."""
    return {k: v for k, v in config.items() if v is not None}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out-dir", required=True, help="data root: writes {train,dev,test}/, lm_text/, corpus_stats.*")
    p.add_argument("--wav-dir", required=True, help="folder for the generated wavs")
    p.add_argument("--text-cache", default=None, help="cache folder for downloaded text (gensim's Lee corpus)")
    p.add_argument("--hours", type=float, default=3.0, help="train hours (default 3)")
    p.add_argument("--dev-hours", type=float, default=0.15)
    p.add_argument("--test-hours", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=int, default=2, help="parallel synthesis processes")
    p.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                   help=f"comma list of {','.join(ENGINES)} (default {','.join(DEFAULT_ENGINES)})")
    p.add_argument("--sources", default="fortunes,lee", help="comma list of text sources: fortunes,lee")
    p.add_argument("--engine-weights", default=",".join(f"{k}={v}" for k, v in DEFAULT_ENGINE_WEIGHTS.items()),
                   help="share of audio per engine, e.g. espeak=0.45,flite=0.2,festival=0.15,piper=0.2 "
                        "(renormalised over the engines with voices in a split; kokoro=0.2 unless given)")
    p.add_argument("--fortunes-dir", default=FORTUNES_DIR)
    p.add_argument("--babble-tracks", type=int, default=6)
    p.add_argument("--no-augment", action="store_true", help="clean speech (no speed/noise/reverb/band-limit)")
    p.add_argument("--drop-train-augment", default="",
                   help=f"comma list of augmentations ({','.join(aug.KINDS)}) left out of the train "
                        "split only, for ablations; dev and test are unchanged")
    p.add_argument("--train-codec-prob", type=float, default=0.0,
                   help=f"share of train utterances passed through a lossy codec ({','.join(aug.CODECS)}); "
                        "train only, every other draw unchanged")
    p.add_argument("--pad-noise-db", type=float, default=None, metavar="DB",
                   help="low-level white/pink noise at this RMS level (dBFS, e.g. -55) in the leading/trailing "
                        "padding of every utterance instead of exact zeros (default: zeros)")
    p.add_argument("--no-prune", action="store_true", help="keep wavs the plan no longer uses")
    p.add_argument("--no-progress", action="store_true")


def config_from_args(args: argparse.Namespace) -> CorpusConfig:
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    bad = [e for e in engines if e not in ENGINES]
    if bad:
        raise CorpusError(f"unknown engine(s) {bad}; choose from {list(ENGINES)}")
    weights = []
    for item in (x for x in args.engine_weights.split(",") if x.strip()):
        k, _, v = item.partition("=")
        try:
            weights.append((k.strip(), float(v)))
        except ValueError:
            raise CorpusError(f"--engine-weights: {item!r} is not ENGINE=WEIGHT") from None
    return CorpusConfig(engine_weights=tuple(weights), fortunes_dir=args.fortunes_dir,
                        babble_tracks=args.babble_tracks, out_dir=args.out_dir, wav_dir=args.wav_dir, text_cache=args.text_cache, hours=args.hours,
                        dev_hours=args.dev_hours, test_hours=args.test_hours, seed=args.seed, nj=args.nj,
                        engines=engines, sources=tuple(s.strip() for s in args.sources.split(",") if s.strip()),
                        augment=not args.no_augment, prune=not args.no_prune,
                        drop_train_augment=_drop_kinds(args.drop_train_augment),
                        train_codec_prob=args.train_codec_prob, pad_noise_db=args.pad_noise_db)


def _drop_kinds(arg: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in arg.split(",") if k.strip())
    _check_drop_kinds(kinds, "--drop-train-augment")
    return kinds


def run(args: argparse.Namespace) -> int:
    st = generate(config_from_args(args), progress=not args.no_progress)
    print(stats_markdown(st))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr.synthesis.generate", description=__doc__.split("\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except ASRError as e:
        print(f"generate-corpus: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
