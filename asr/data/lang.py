"""``asr make-tokens --train-data DIR --out LANG [--token-type char|bpe] [--nbpe N]``: a recipe's token
set (the shared stage 1).

* ``char``: the character set of :class:`asr.tokens.CharTokenizer` -> ``LANG/tokens.txt``
  (recipes use ``data/lang_char``).
* ``bpe``: a sentencepiece BPE model trained on the transcripts of the **training** data dir only (dev
  and test text never shapes the units) -> ``LANG/tokens.txt`` + ``LANG/bpe.model`` (recipes use
  ``data/lang_bpe_N``). ``N`` is the sentencepiece vocabulary (``<unk>`` included), as in ESPnet's
  ``nbpe``; the CTC output has ``N + 1`` labels with ``<blank>``. A tiny corpus may give fewer pieces
  than asked (it is said).

Every later stage reads ``LANG/tokens.txt`` and finds ``bpe.model`` beside it
(:func:`asr.tokens.load_tokenizer`); training, the LM, packages and ONNX exports carry both.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import DataDirError
from ..tokens import BPE_MODEL_NAME, BPETokenizer, CharTokenizer
from .datadir import read_kaldi_map


def make_tokens(train_dir: str | Path, out_dir: str | Path, token_type: str = "char", nbpe: int = 500,
                log=print) -> CharTokenizer | BPETokenizer:
    """Write ``out_dir/tokens.txt`` (+ ``bpe.model``) for ``token_type``; returns the tokenizer."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if token_type == "char":
        tok = CharTokenizer()
    elif token_type == "bpe":
        if nbpe < 2:
            raise DataDirError(f"--nbpe must be at least 2 (sentencepiece pieces incl. <unk>), got {nbpe}")
        text = Path(train_dir) / "text"
        texts = list(read_kaldi_map(text).values())
        if not any(t.strip() for t in texts):
            raise DataDirError(f"{text} holds no transcripts to train the BPE model on")
        tok = BPETokenizer.train(texts, vocab_size=nbpe + 1)
        got = tok.vocab_size - 1
        log(f"BPE model trained on {len(texts)} transcripts of {text}: {got} pieces"
            + (f" (asked for {nbpe}: the corpus has too little text for more)" if got < nbpe else ""))
    else:
        raise DataDirError(f"--token-type must be char or bpe, got {token_type!r}")
    tok.save(out / "tokens.txt")
    if token_type == "char":
        (out / BPE_MODEL_NAME).unlink(missing_ok=True)  # from an earlier BPE run into the same dir
    log(f"wrote {out / 'tokens.txt'} ({tok.vocab_size} tokens incl. <blank>)"
        + (f" and {out / 'bpe.model'}" if token_type == "bpe" else ""))
    return tok


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train-data", required=True, help="training data dir: its text trains the BPE model")
    p.add_argument("--out", required=True, help="lang dir to write (tokens.txt, + bpe.model for BPE)")
    p.add_argument("--token-type", default="char", choices=("char", "bpe"), help="characters or sentencepiece BPE")
    p.add_argument("--nbpe", type=int, default=500, help="BPE: sentencepiece vocabulary size (incl. <unk>)")


def run(args: argparse.Namespace) -> int:
    make_tokens(args.train_data, args.out, args.token_type, args.nbpe)
    return 0
