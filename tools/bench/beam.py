#!/usr/bin/env python
"""Benchmark our CTC prefix beam search against pyctcdecode and torchaudio's flashlight decoder.

Same emission matrices for every decoder, one CPU thread:

* synthetic ``flat``: 1000 x 30 log-softmax of N(0, 1) logits (every token plausible everywhere);
* synthetic ``peaky``: N(0, 1) logits + 6 on one random token per frame (blank in 60 % of frames);
* synthetic ``speech``: CTC-like peaks of random English words at ~13 characters per second, blank
  frames in between (see ``speechlike``), 29 tokens;
* ``real``: the acoustic model's outputs on dev utterances, when ``--package`` (default
  recipes/tts_en/exp/model) exists, concatenated to one matrix (several if --real-utts).

Without an LM: time (median of ``--repeats``) at beam 10 and 50 for
  ours (``exact`` settings = no token pruning, no blank skipping, beam threshold 50 like flashlight's
  default, and ``default`` = our default pruning), pyctcdecode (its defaults), flashlight
  (``ctc_decoder(lexicon=None, lm=None, beam_size_token=None, beam_threshold=50, log_add=True)``),
and print the ratios pyctcdecode/ours and ours/flashlight, plus top-hypothesis agreement with
flashlight (``log_add`` True and False). Where they differ, the exact CTC log-likelihood of both
tops is printed, and whether flashlight's top is the greedy best path: without an LM, torchaudio's
ZeroLM gives every hypothesis the same LM state, so flashlight's lexicon-free search merges
hypotheses by last token only - a frame-synchronous Viterbi that returns the best path - while ours
is a prefix search (sum over alignments per prefix).

With the LSTM LM (``--lm`` = lm.pt / LM experiment dir, else a randomly initialised
``--lm-conf`` model: the cost is the same): real-time factor on one thread at the ``--lm-beams``
(default 10, 50 and the tts_en recipe's 100), with the model's output frame rate on the real
emissions and 40 ms frames on the synthetic ones.

With a word n-gram LM (``--arpa`` lm.arpa, default the package's lm.arpa): our n-gram beam search
against pyctcdecode + kenlm with the same ARPA file, the same beam (``--ngram-beam``), the same
weights (``--ngram-weight``, ``--ngram-beta``, ``--unk-offset``; default: the package's decode.yaml)
and the same emissions: the recipe's test set (``--ngram-data``, default data/test beside the
package). Both run on one thread in one process; prints each one's seconds (wall and CPU: the CPU
time does not count what other jobs on the machine take), real-time factor and WER, and the ratios. pyctcdecode runs with its default pruning (beam_prune_logp -10,
token_min_logp -5), ours with its default (DecodeConfig). ``--only-ngram`` skips the rest.

Install the peers with ``pip install -e '.[bench]'`` and ``pip install --no-deps pyctcdecode pygtrie``
(pyctcdecode pins numpy<2, hence --no-deps).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import string  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from asr.decode.beam import beam_search, warmup  # noqa: E402
from asr.decode.config import DecodeConfig  # noqa: E402

OPTIONS = DecodeConfig(method="beam")  # our defaults (pruning on)
EXACT = dict(token_prune_topk=None, prune_threshold=None, beam_threshold=50.0, blank_skip_threshold=1.0)


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return (x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))).astype(np.float32)


def synthetic(kind: str, T: int, V: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((T, V))
    if kind == "peaky":
        win = np.where(rng.random(T) < 0.6, 0, rng.integers(1, V, T))
        z[np.arange(T), win] += 6.0
    return log_softmax(z)


WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which but "
         "have an they you were her she there been one all we their has would when if so no will more").split()


def speechlike(T: int, V: int = 29, seed: int = 0) -> np.ndarray:
    """A CTC-like emission of random English words at ~13 characters per second (40 ms frames):
    each character peaks for 1-2 frames (0.55-0.99, the rest on 3 confusable tokens and blank),
    separated by 0-3 blank frames (P(blank) 0.99-0.99999)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < T:
        for ch in " ".join(rng.choice(WORDS, 12)) + " ":
            tok = 1 if ch == " " else 3 + ord(ch) - ord("a")
            for _ in range(int(rng.integers(1, 3))):
                p = np.full(V, 1e-6)
                top = rng.uniform(0.55, 0.99)
                rest = (1 - top) * rng.dirichlet(np.ones(4))
                p[tok] = top
                p[0] += rest[0]
                p[rng.integers(1, V, 3)] += rest[1:]
                out.append(p / p.sum())
            for _ in range(int(rng.integers(0, 4))):
                p = np.full(V, 1e-7)
                p[0] = 1.0 - 10 ** rng.uniform(-5, -2)
                p[rng.integers(1, V, 2)] += (1 - p[0]) / 2
                out.append(p / p.sum())
    return np.log(np.asarray(out[:T])).astype(np.float32)


def labels_for(V: int) -> list[str]:
    base = ["<blank>", "|", "'"] + list(string.ascii_lowercase)
    extra = [f"#{i}" for i in range(max(0, V - len(base)))]
    return (base + extra)[:V]


def timed(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up (numba load, first-call allocations)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, out


def real_emissions(package: Path, n_utts: int) -> tuple[list[np.ndarray], float] | None:
    """Acoustic-model log-probs of up to n_utts dev utterances and the seconds per output frame
    (None when there is no package)."""
    if not (package / "model.pt").is_file():
        return None
    from asr.api import load_model
    from asr.data.datadir import DataDir

    model = load_model(package)
    data = None
    for cand in ("data/dev", "data/test", "data/train"):
        d = package.parents[1] / cand
        if (d / "wav.scp").is_file():
            data = DataDir.load(d)
            break
    if data is None:
        return None
    feats = [model.compute_features(data.audio(utt)) for utt in data.utt_ids[:n_utts]]
    frame_s = model.output_frame_shift
    return [np.ascontiguousarray(x, dtype=np.float32) for x in model.emissions(feats)], frame_s


class Peers:
    def __init__(self, labels: list[str]):
        self.labels = labels
        self.pyctc = None
        self.fl_cache: dict = {}
        try:
            import logging

            logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
            from pyctcdecode import build_ctcdecoder

            plabels = ["", " "] + labels[2:]
            self.pyctc = build_ctcdecoder(plabels)
        except Exception as e:  # noqa: BLE001
            print(f"(pyctcdecode unavailable: {type(e).__name__}: {e})")
        try:
            from torchaudio.models.decoder import ctc_decoder  # noqa: F401

            self.has_fl = True
        except Exception as e:  # noqa: BLE001
            print(f"(flashlight ctc_decoder unavailable: {type(e).__name__}: {e})")
            self.has_fl = False

    def flashlight(self, beam: int, log_add: bool):
        key = (beam, log_add)
        if key not in self.fl_cache:
            from torchaudio.models.decoder import ctc_decoder

            self.fl_cache[key] = ctc_decoder(lexicon=None, tokens=self.labels, lm=None, nbest=1, beam_size=beam,
                                             beam_size_token=None, beam_threshold=50, log_add=log_add,
                                             blank_token=self.labels[0], sil_token=self.labels[1])
        return self.fl_cache[key]


def fl_tokens(hyp) -> tuple[int, ...]:
    """flashlight's collapsed tokens, minus the word boundary it puts at both ends."""
    toks = [int(t) for t in hyp.tokens]
    while toks and toks[0] == 1:
        toks.pop(0)
    while toks and toks[-1] == 1:
        toks.pop()
    return tuple(toks)


def strip_sep(toks) -> tuple[int, ...]:
    toks = list(toks)
    while toks and toks[0] == 1:
        toks.pop(0)
    while toks and toks[-1] == 1:
        toks.pop()
    return tuple(toks)


def bench_no_lm(name: str, lp: np.ndarray, peers: Peers, beams, repeats: int) -> None:
    T, V = lp.shape
    em = torch.from_numpy(lp)[None].contiguous()
    for beam in beams:
        t_ex, ours = timed(lambda: beam_search(lp, None, OPTIONS, beam=beam, **EXACT), repeats)
        t_def, _ = timed(lambda: beam_search(lp, None, OPTIONS, beam=beam), repeats)
        row = [f"{name:>6} T={T} V={V} beam {beam:>2}: ours exact {t_ex:7.1f} ms, default {t_def:7.1f} ms"]
        if peers.pyctc is not None:
            t_py, _ = timed(lambda: peers.pyctc.decode(lp, beam_width=beam), max(1, repeats // 2))
            row.append(f"pyctcdecode {t_py:7.1f} ms (x{t_py / t_ex:.1f} ours exact, x{t_py / t_def:.1f} ours default)")
        if peers.has_fl:
            dec = peers.flashlight(beam, True)
            t_fl, fl = timed(lambda: dec(em), repeats)
            fl_max = peers.flashlight(beam, False)(em)
            a_sum = strip_sep(ours[0].tokens) == fl_tokens(fl[0][0])
            a_max = strip_sep(ours[0].tokens) == fl_tokens(fl_max[0][0])
            ours_def = beam_search(lp, None, OPTIONS, beam=beam)[0]
            a_def = strip_sep(ours_def.tokens) == fl_tokens(fl[0][0])
            row.append(f"flashlight {t_fl:7.1f} ms (ours exact/flashlight {t_ex / t_fl:.2f}, "
                       f"default/flashlight {t_def / t_fl:.2f}); top-1 == flashlight: log_add {a_sum}, "
                       f"max {a_max}, ours-default {a_def}")
            if not a_sum:
                from asr.decode.greedy import greedy_decode

                greedy = strip_sep(greedy_decode(lp)[0])
                row.append("  " + explain_diff(lp, ours[0].tokens, fl_tokens(fl[0][0]))
                           + f"; flashlight top == greedy best path: log_add {fl_tokens(fl[0][0]) == greedy}, "
                           f"max {fl_tokens(fl_max[0][0]) == greedy}")
        print("\n    ".join(row), flush=True)


def explain_diff(lp: np.ndarray, ours, theirs) -> str:
    """Exact CTC log-likelihood of both top hypotheses (higher = better under the shared objective)."""
    def ll(toks):
        toks = list(toks)
        if not toks:
            return float(lp[:, 0].sum())
        return -float(torch.nn.functional.ctc_loss(torch.from_numpy(lp)[:, None], torch.tensor([toks]),
                                                   torch.tensor([lp.shape[0]]), torch.tensor([len(toks)]),
                                                   reduction="sum"))
    import difflib

    sm = difflib.SequenceMatcher(a=list(ours), b=list(theirs), autojunk=False)
    n_diff = sum(max(i2 - i1, j2 - j1) for op, i1, i2, j1, j2 in sm.get_opcodes() if op != "equal")
    return (f"differs in {n_diff} of {len(ours)} tokens; log P_ctc(ours top)={ll(ours):.3f}, "
            f"log P_ctc(flashlight top)={ll(theirs):.3f}")


def bench_lm(lp_list: list[np.ndarray], lm_path: str | None, lm_conf: Path, beams, vocab: int, label: str,
             alpha: float, beta: float, frame_s: float = 0.040) -> None:
    from asr import config as config_mod
    from asr.models.lm import LMConfig, LSTMLM, TorchLMScorer, load_lm

    if lm_path:
        model = load_lm(lm_path)
        what = f"trained LM {lm_path}"
    else:
        torch.manual_seed(0)
        model = LSTMLM(config_mod.load(LMConfig, lm_conf), vocab).eval()
        what = f"random-weight LM {lm_conf.name}"
    cfg = model.cfg
    print(f"LM: {what}: embed {cfg.embed}, hidden {cfg.hidden}, layers {cfg.layers}, "
          f"{model.num_parameters() / 1e6:.2f} M params")
    scorer = TorchLMScorer(model)
    frames = sum(x.shape[0] for x in lp_list)
    audio_s = frames * frame_s
    for beam in beams:
        calls = {"n": 0, "rows": 0}
        orig = scorer.score_batch

        def counting(states, tokens):
            calls["n"] += 1
            calls["rows"] += len(states)
            return orig(states, tokens)

        scorer.score_batch = counting
        t = time.perf_counter()
        c = time.process_time()
        for x in lp_list:
            beam_search(x, None, OPTIONS, lm=scorer, beam=beam, alpha=alpha, beta=beta)
        el = time.perf_counter() - t
        cpu = time.process_time() - c
        scorer.score_batch = orig
        t0 = time.perf_counter()
        for x in lp_list:
            beam_search(x, None, OPTIONS, beam=beam)
        el0 = time.perf_counter() - t0
        print(f"{label:>6} + LSTM LM beam {beam:>2}: {el * 1e3:8.1f} ms for {audio_s:.1f} s of audio "
              f"({frame_s * 1e3:.0f} ms frames) -> RTF {el / audio_s:.4f} wall, {cpu / audio_s:.4f} CPU (no LM: {el0 / audio_s:.4f}); "
              f"{calls['n']} LM calls for {frames} frames, {calls['rows'] / max(1, calls['n']):.1f} prefixes/call",
              flush=True)


def test_set(package: Path, data: Path | None) -> tuple[list[str], list[np.ndarray], list[str], float]:
    """Utterance ids, emissions, reference texts and seconds per output frame of a data dir."""
    from asr.data.datadir import read_kaldi_map
    from asr.decode.cli import load_features
    from asr.recognizer import Recognizer

    data = data or package.parents[1] / "data" / "test"
    model = Recognizer(package, threads=1, use_lm=False, use_ngram=False)
    text = read_kaldi_map(data / "text")
    utts = sorted(text)
    lps = [np.ascontiguousarray(x, dtype=np.float32) for x in model.emissions(load_features(model, data, utts))]
    return utts, lps, [text[u] for u in utts], model.output_frame_shift


def bench_kenlm_binary(arpa: Path, tok, cfg: DecodeConfig, lps, refs, ours, audio_s: float, t_ours: float) -> None:
    """The row of our beam search with the same LM as a KenLM binary (build_binary probing, scored
    through kenlm on demand): its time against the ARPA row's, and whether it finds the same texts."""
    import tempfile

    from asr.decode.beam import beam_search_batch
    from asr.errors import ASRError
    from asr.ngram.binary import KenlmLM, is_kenlm_binary, write_binary
    from asr.score import error_rates

    if is_kenlm_binary(arpa):
        return
    with tempfile.TemporaryDirectory(prefix="bench-kenlm-") as tmp:
        try:
            t = time.perf_counter()
            binary = write_binary(arpa, Path(tmp) / "lm.binary")
            conv_s = time.perf_counter() - t
            t = time.perf_counter()
            blm = KenlmLM(binary)
            load_s = time.perf_counter() - t
        except ASRError as e:
            print(f"  (KenLM binary row skipped: {e})")
            return
        beam_search_batch(lps[:2], tok, cfg, ngram=blm)  # vocabulary trie (its cache warms up in the timed run)
        t, c = time.perf_counter(), time.process_time()
        hyps = [h[0].text for h in beam_search_batch(lps, tok, cfg, ngram=blm)]
        t_bin, c_bin = time.perf_counter() - t, time.process_time() - c
        w_bin = error_rates(refs, hyps)["wer"]
        print(f"  ours+binary: {t_bin:7.2f} s wall, {c_bin:7.2f} s CPU  RTF {t_bin / audio_s:.4f} wall, "
              f"{c_bin / audio_s:.4f} CPU  WER {100 * w_bin:.2f}%  ({t_bin / t_ours:.1f}x the ARPA row's time; "
              f"top-1 equal to it on {sum(a == b for a, b in zip(hyps, ours))}/{len(ours)}; build_binary "
              f"{conv_s:.1f} s, {binary.stat().st_size / 1e6:.1f} MB, loaded in {load_s:.1f} s; "
              f"{int(blm.tables.has_p.sum())} (state, word) pairs scored)", flush=True)


def bench_ngram(package: Path, arpa: Path, data: Path | None, beam: int, weight: float | None, beta: float | None,
                unk_offset: float | None) -> None:
    """Our n-gram beam search vs pyctcdecode + kenlm: same ARPA, beam, weights and emissions."""
    import logging

    from asr import config as config_mod
    from asr.decode.beam import beam_search_batch
    from asr.ngram.model import load_ngram
    from asr.package import load_package_tokenizer
    from asr.score import error_rates

    dcfg = config_mod.load(DecodeConfig, package / "decode.yaml") if (package / "decode.yaml").is_file() else OPTIONS
    cfg = dataclasses.replace(dcfg, method="beam", beam=beam, use_lm=False, use_ngram=True,
                              **{k: v for k, v in (("ngram_weight", weight), ("beta", beta), ("unk_offset", unk_offset))
                                 if v is not None})
    tok = load_package_tokenizer(package)
    utts, lps, refs, frame_s = test_set(package, data)
    audio_s = sum(x.shape[0] for x in lps) * frame_s
    t = time.perf_counter()
    lm = load_ngram(arpa)
    load_s = time.perf_counter() - t
    print(f"n-gram: {arpa} (order {lm.order}, {lm.num_ngrams} n-grams, read in {load_s:.1f} s); {len(utts)} "
          f"utterances, {audio_s:.0f} s of audio; beam {beam}, weight {cfg.ngram_weight}, beta {cfg.beta}, "
          f"unk offset {cfg.unk_offset}", flush=True)
    beam_search_batch(lps[:2], tok, cfg, ngram=lm)  # compile / load the kernel, build the vocabulary trie
    t, c = time.perf_counter(), time.process_time()
    ours = [h[0].text for h in beam_search_batch(lps, tok, cfg, ngram=lm)]
    t_ours, c_ours = time.perf_counter() - t, time.process_time() - c
    w_ours = error_rates(refs, ours)["wer"]
    print(f"  ours:        {t_ours:7.2f} s wall, {c_ours:7.2f} s CPU  RTF {t_ours / audio_s:.4f} wall, "
          f"{c_ours / audio_s:.4f} CPU  WER {100 * w_ours:.2f}%", flush=True)
    bench_kenlm_binary(arpa, tok, cfg, lps, refs, ours, audio_s, t_ours)
    try:
        logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
        from pyctcdecode import build_ctcdecoder
    except ImportError as e:
        print(f"  (pyctcdecode unavailable: {e}; pip install --no-deps pyctcdecode pygtrie, and kenlm)")
        return
    labels = ["", " "] + list(tok.tokens[2:])
    unigrams = [w for w in lm.words if w not in ("<s>", "</s>", "<unk>")]
    # pyctcdecode: alpha * log10 -> ln of kenlm's score + beta per word, like ours; its unk_score_offset is
    # added to kenlm's log10 score of an OOV word (so it is divided by ln 10 here) and to partial words as is
    dec = build_ctcdecoder(labels, kenlm_model_path=str(arpa), unigrams=unigrams, alpha=cfg.ngram_weight,
                           beta=cfg.beta, unk_score_offset=cfg.unk_offset)
    dec.decode(lps[0], beam_width=beam)  # warm-up
    t, c = time.perf_counter(), time.process_time()
    theirs = [dec.decode(x, beam_width=beam) for x in lps]
    t_py, c_py = time.perf_counter() - t, time.process_time() - c
    w_py = error_rates(refs, theirs)["wer"]
    print(f"  pyctcdecode: {t_py:7.2f} s wall, {c_py:7.2f} s CPU  RTF {t_py / audio_s:.4f} wall, "
          f"{c_py / audio_s:.4f} CPU  WER {100 * w_py:.2f}%", flush=True)
    print(f"  -> ours is {t_py / t_ours:.1f}x faster (wall; CPU time {c_py / c_ours:.1f}x), WER {100 * w_ours:.2f}% vs {100 * w_py:.2f}% "
          f"({'equal or lower' if w_ours <= w_py else 'higher'}); top-1 texts equal on "
          f"{sum(a == b for a, b in zip(ours, theirs))}/{len(utts)} utterances", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--vocab", type=int, default=30)
    p.add_argument("--beams", type=int, nargs="+", default=[10, 50], help="beams of the peer comparison")
    p.add_argument("--lm-beams", type=int, nargs="+", default=[10, 50, 100],
                   help="beams of the beam + LSTM LM real-time factor (100: the tts_en recipe's default)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--package", type=Path, default=REPO / "recipes/tts_en/exp/model")
    p.add_argument("--real-utts", type=int, default=20)
    p.add_argument("--lm", default=None, help="lm.pt or LM experiment dir (default: the package's lm.pt if any)")
    p.add_argument("--lm-conf", type=Path, default=REPO / "conf/model/lm_small.yaml")
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--skip-peers", action="store_true")
    p.add_argument("--arpa", type=Path, default=None, help="word n-gram LM (default: the package's lm.arpa)")
    p.add_argument("--ngram-data", type=Path, default=None, help="data dir of the n-gram comparison (default: "
                   "data/test beside the package)")
    p.add_argument("--ngram-beam", type=int, default=100)
    p.add_argument("--ngram-weight", type=float, default=None, help="default: the package's decode.yaml")
    p.add_argument("--ngram-beta", type=float, default=None, help="default: the package's decode.yaml")
    p.add_argument("--unk-offset", type=float, default=None, help="default: the package's decode.yaml")
    p.add_argument("--only-ngram", action="store_true", help="only the n-gram comparison")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    warmup()
    arpa = args.arpa or (args.package / "lm.arpa" if (args.package / "lm.arpa").is_file() else None)
    if arpa is not None:
        bench_ngram(args.package, arpa, args.ngram_data, args.ngram_beam, args.ngram_weight, args.ngram_beta,
                    args.unk_offset)
    elif args.only_ngram:
        print(f"(no --arpa and no {args.package / 'lm.arpa'}: nothing to compare)")
    if args.only_ngram:
        return 0
    sets = [("flat", synthetic("flat", args.frames, args.vocab)), ("peaky", synthetic("peaky", args.frames, args.vocab)),
            ("speech", speechlike(args.frames))]
    real, frame_s = None, 0.040
    try:
        got = real_emissions(args.package, args.real_utts)
        if got:
            real, frame_s = got
    except Exception as e:  # noqa: BLE001
        print(f"(real emissions unavailable: {type(e).__name__}: {e})")
    if real:
        cat = np.concatenate(real, 0)
        sets.append(("real", cat))
        print(f"real emissions: {len(real)} utterances of {args.package}, {cat.shape[0]} frames x {cat.shape[1]}, "
              f"{frame_s * 1e3:.0f} ms per frame")
    else:
        print(f"(no model package at {args.package}: synthetic emissions only)")
    print(f"one CPU thread; times are medians of {args.repeats} runs")
    for name, lp in sets:
        peers = Peers(labels_for(lp.shape[1])) if not args.skip_peers else Peers.__new__(Peers)
        if args.skip_peers:
            peers.pyctc, peers.has_fl = None, False
        bench_no_lm(name, lp, peers, args.beams, args.repeats)
    lm_path = args.lm
    if lm_path is None and (args.package / "lm.pt").is_file():
        lm_path = str(args.package / "lm.pt")
    if real:
        bench_lm(real, lm_path, args.lm_conf, args.lm_beams, real[0].shape[1], "real", args.alpha, args.beta, frame_s)
    for name, lp in sets[:3]:
        bench_lm([lp], None, args.lm_conf, args.lm_beams, lp.shape[1], name,
                 args.alpha, args.beta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
