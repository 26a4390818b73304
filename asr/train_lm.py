"""``asr train-lm``: train the LSTM language model on a text corpus with the shared training loop.

Reads one sentence per line (``--utt-ids`` for Kaldi ``text`` files whose first field is an id),
normalises it with ``asr.text.normalize_text`` and encodes it with the acoustic model's token set
(``tokens.txt``, + ``bpe.model`` beside it for BPE). Lines that cannot be encoded are skipped and
counted. Training is ``asr.train.fit``: checkpoints, resume after a kill, early stopping on dev
perplexity, best-N averaging. The experiment dir gets ``lm.yaml``, ``train.yaml``, ``tokens.txt``
and ``checkpoints/`` (``avg_best*.pt`` is what ``asr package --lm-exp`` picks).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import torch

from . import config as config_mod
from .errors import ASRError
from .models.lm import LMConfig, LSTMLM, collate_sentences, lm_loss
from .train import TrainConfig, dist_info, fit, split_overrides

DEFAULT_TRAIN_CONF = "conf/train/lm.yaml"


def read_sentences(paths: Iterable[str | Path], tokenizer, utt_ids: bool = False,
                   max_len: int = 400) -> tuple[list[list[int]], int]:
    """Token-id lists of every encodable line of ``paths``; also the number of skipped lines."""
    from .errors import TextError
    from .text import normalize_text

    out: list[list[int]] = []
    skipped = 0
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise ASRError(f"text file {p} does not exist")
        with open(p, encoding="utf-8") as f:
            for line in f:
                if utt_ids:
                    parts = line.split(maxsplit=1)
                    line = parts[1] if len(parts) > 1 else ""
                text = normalize_text(line)
                if not text:
                    continue
                try:
                    ids = tokenizer.encode(text)
                except TextError:
                    skipped += 1
                    continue
                if ids:
                    out.append(ids[:max_len])
    return out, skipped


class LMTask:
    """``TrainTask`` for the LM: batches of sentences, summed token cross-entropy, dev perplexity."""

    kind = "lm"
    metric_names = ("dev_ppl",)
    throughput_unit = "tokens"

    def __init__(self, model: LSTMLM, train: Sequence[Sequence[int]], dev: Sequence[Sequence[int]],
                 cfg: TrainConfig):
        self.model = model
        self.train = list(train)
        self.dev = list(dev)
        self.cfg = cfg
        self.train_lengths = [len(s) + 1 for s in self.train]
        self.dev_lengths = [len(s) + 1 for s in self.dev]

    def train_batches(self, epoch: int, rank: int, world: int):
        from .data.dataset import bucket_batches, shard_batches

        plan = bucket_batches(self.train_lengths, self.cfg.max_frames, self.cfg.max_batch, seed=self.cfg.seed,
                              epoch=epoch, shuffle=True)
        return _LazyLMBatches(self.train, list(shard_batches(plan, rank, world)))

    def dev_batches(self):
        from .data.dataset import bucket_batches

        for idx in bucket_batches(self.dev_lengths, self.cfg.max_frames, self.cfg.max_batch, shuffle=False):
            yield collate_sentences([self.dev[i] for i in idx])

    def loss(self, model, batch, device, train):
        x, y, lens = batch
        return lm_loss(model, x.to(device), y.to(device), lens.to(device))

    def batch_units(self, batch) -> float:
        return float(batch[2].sum())  # tokens, </s> included

    def evaluate(self, model, device) -> dict[str, float]:
        tot, n = 0.0, 0
        with torch.no_grad():
            for batch in self.dev_batches():
                ls, k = self.loss(model, batch, device, False)
                tot += float(ls)
                n += k
        return {"dev_ppl": math.exp(tot / max(1, n))}

    def checkpoint_meta(self):
        return {"model_config": config_mod.to_dict(self.model.cfg), "vocab_size": self.model.vocab_size}


class _LazyLMBatches:
    """List-like of (collated batch, global size); collates on iteration so memory stays flat."""

    def __init__(self, sentences, plan):
        self.sentences = sentences
        self.plan = plan

    def __len__(self):
        return len(self.plan)

    def __iter__(self):
        for idx, n in self.plan:
            yield collate_sentences([self.sentences[i] for i in idx]), n


def train_lm(train_sents, dev_sents, vocab_size: int, mcfg: LMConfig, tcfg: TrainConfig, exp_dir,
             device: str = "auto", resume: bool = True) -> dict:
    """Build the model and run ``fit``; returns fit's summary."""
    torch.manual_seed(tcfg.seed)
    model = LSTMLM(mcfg, vocab_size)
    task = LMTask(model, train_sents, dev_sents, tcfg)
    return fit(task, tcfg, exp_dir, device=device, resume=resume)


def add_arguments(p) -> None:
    p.add_argument("--text", required=True, nargs="+", help="training text file(s), one sentence per line")
    p.add_argument("--dev-text", required=True, nargs="+", help="dev text file(s) for perplexity / early stopping")
    p.add_argument("--tokens", required=True, help="tokens.txt of the acoustic model's token set")
    p.add_argument("--exp", required=True, help="LM experiment dir (resumed if it has checkpoints/last.pt)")
    p.add_argument("--conf", default="conf/model/lm_small.yaml", help="LM model YAML (LMConfig)")
    p.add_argument("--train-conf", default=None,
                   help=f"training YAML (TrainConfig; default {DEFAULT_TRAIN_CONF} if present, else built-in LM defaults)")
    p.add_argument("--utt-ids", action="store_true", help="lines start with an utterance id (Kaldi text files)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if last.pt exists")
    p.add_argument("overrides", nargs="*", help="--model.KEY VALUE / --train.KEY VALUE")


# LM defaults differ from the acoustic model's: batches are counted in tokens, early stop on perplexity.
LM_TRAIN_DEFAULTS = TrainConfig(epochs=10, max_frames=4000, max_batch=128, lr=3e-3, weight_decay=0.01,
                                warmup_steps=100, specaugment=False, early_stop_metric="dev_ppl", patience=3,
                                keep_best=3, average=3)


def run(args) -> int:
    from .text import load_tokenizer
    from .tokens import copy_token_files

    ov = split_overrides(args.overrides)
    mcfg = config_mod.load(LMConfig, args.conf, ov.get("model"))
    train_conf = args.train_conf or (DEFAULT_TRAIN_CONF if Path(DEFAULT_TRAIN_CONF).is_file() else None)
    tcfg = config_mod.load(TrainConfig, train_conf, ov.get("train"), base=LM_TRAIN_DEFAULTS)
    tok = load_tokenizer(args.tokens)
    train_sents, sk_train = read_sentences(args.text, tok, args.utt_ids)
    dev_sents, sk_dev = read_sentences(args.dev_text, tok, args.utt_ids)
    if not train_sents:
        raise ASRError(f"no usable sentences in {args.text}")
    if not dev_sents:
        raise ASRError(f"no usable sentences in {args.dev_text}")
    exp = Path(args.exp)
    rank, _, _ = dist_info()
    if rank == 0:
        exp.mkdir(parents=True, exist_ok=True)
        config_mod.save(mcfg, exp / "lm.yaml")
        config_mod.save(tcfg, exp / "train.yaml")
        copy_token_files(args.tokens, exp)
        n_tok = sum(len(s) + 1 for s in train_sents)
        print(f"LM data: {len(train_sents)} train sentences ({n_tok} tokens incl. </s>), {len(dev_sents)} dev"
              + (f"; skipped {sk_train} train / {sk_dev} dev lines with characters outside tokens.txt"
                 if sk_train or sk_dev else ""))
    if tcfg.threads > 0:
        torch.set_num_threads(tcfg.threads)
    summary = train_lm(train_sents, dev_sents, tok.vocab_size, mcfg, tcfg, exp, args.device,
                       resume=not args.no_resume)
    if rank == 0 and summary.get("history"):
        msg = f"done: {summary['epochs_run']} epochs, best dev_ppl={summary['best_metric']:.3f}"
        if summary.get("averaged"):
            from .models.lm import load_lm, perplexity

            ppl = perplexity(load_lm(summary["averaged"]), dev_sents)
            msg += f"; averaged model {summary['averaged']} dev_ppl={ppl:.3f}"
        print(msg)
    return 0
