#!/usr/bin/env python3
"""Write the shipped model (asr/pretrained/<NAME>/{torch,onnx}) from a recipe's final packages.

    python tools/make_pretrained.py --torch recipes/tts_en/exp/large_cpu_model \
        --onnx recipes/tts_en/exp/large_cpu_onnx --card model_card.md --summary "..." \
        --out asr/pretrained/tts_en_large_cpu

* ``torch/``: the PyTorch package (``asr package --lm-exp``, alpha/beta tuned on dev) with the float
  tensors of ``model.pt`` and ``lm.pt`` stored as float16 (half the size; the loaders copy them
  into float32 modules, so recognition is float32 as before).
* ``onnx/``: the ONNX package (``asr export --int8``) without ``model.onnx``: the int8 acoustic
  model is its only acoustic model (the runtime takes it when there is no fp32 one).
* ``README.md``: the model card (``--card``); ``card.json``: the one-paragraph ``--summary`` that
  ``asr transcribe --help`` prints.

Both packages are checked (format, hashes) and loaded before the old folder is replaced.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path


def _half(path: Path) -> None:
    import torch

    st = torch.load(path, map_location="cpu", weights_only=True)
    key = "state_dict" if "state_dict" in st else "model"
    st[key] = {k: (v.half() if v.is_floating_point() else v) for k, v in st[key].items()}
    tmp = path.with_suffix(".tmp")
    torch.save(st, tmp)
    tmp.replace(path)


def build(torch_pkg: Path, onnx_pkg: Path, out: Path, card: Path, summary: str) -> None:
    from asr.ngram.model import cache_path
    from asr.package import NGRAM_FILE, check_package, write_manifest
    from asr.recognizer import Recognizer

    check_package(torch_pkg)
    onnx_meta = json.loads((check_package(onnx_pkg).path / "package.json").read_text())
    if not (onnx_pkg / "model.int8.onnx").is_file():
        sys.exit(f"{onnx_pkg} has no model.int8.onnx: export it with `asr export --int8`")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copytree(torch_pkg, work / "torch")
        for name in ("model.pt", "lm.pt"):
            if (work / "torch" / name).is_file():
                _half(work / "torch" / name)
        write_manifest(work / "torch")
        shutil.copytree(onnx_pkg, work / "onnx", ignore=shutil.ignore_patterns("model.onnx"))
        write_manifest(work / "onnx", format_version=int(onnx_meta["format_version"]))
        shutil.copy(card, work / "README.md")
        (work / "card.json").write_text(json.dumps({"summary": summary}, indent=1) + "\n")
        for sub, backend in (("torch", "torch"), ("onnx", "onnx")):
            Recognizer(work / sub, backend=backend)  # format, hashes, weights, LM: refused here, not at a user's
            cache_path(work / sub / NGRAM_FILE).unlink(missing_ok=True)  # the n-gram table cache it left: not shipped
        if out.exists():
            shutil.rmtree(out)
        work.replace(out)
    finally:
        if work.exists():
            shutil.rmtree(work)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({size / 1e6:.1f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--torch", type=Path, required=True, help="PyTorch package (exp/<...>_model)")
    ap.add_argument("--onnx", type=Path, required=True, help="its ONNX export with --int8 (exp/<...>_onnx)")
    ap.add_argument("--card", type=Path, required=True, help="model card (markdown) -> README.md")
    ap.add_argument("--summary", required=True, help="one paragraph for `asr transcribe --help`")
    ap.add_argument("--out", type=Path, default=None, help="default: asr/pretrained/<asr.pretrained.NAME>")
    a = ap.parse_args()
    from asr import pretrained

    build(a.torch, a.onnx, a.out or pretrained.ROOT, a.card, a.summary)


if __name__ == "__main__":
    main()
