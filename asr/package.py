"""Model packages: one self-contained folder that ``transcribe``, the runtime and export load.

Contents (``format_version`` 1)::

    model.pt        {"format_version", "model_config", "input_dim", "vocab_size", "state_dict"}
    tokens.txt      the token set (blank first)
    features.yaml   the FeatureConfig used in training
    cmvn.npz        global CMVN statistics (optional if the model used per-utterance CMVN)
    decode.yaml     DecodeConfig (method, beam, tuned alpha/beta)
    lm.pt, lm.yaml  optional LSTM language model
    package.json    {"format_version", "files": {name: sha256}, ...}

Loading checks the format version and every file's hash, so a truncated copy or a file swapped in
from another model is refused with a message naming the file. A package whose package.json has no
hashes is refused too (it cannot be verified): re-create it with ``asr package`` or ``asr export``.
``model.pt`` is read with ``torch.load(weights_only=True)``: tensors and plain values only, no code.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_dir, atomic_write_json
from .errors import ModelPackageError

FORMAT_VERSION = 1
REQUIRED = ("tokens.txt", "features.yaml", "package.json")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(pkg: Path, extra: dict | None = None, format_version: int = FORMAT_VERSION) -> dict:
    """(Re)write package.json with the hashes of every file in ``pkg``, keeping the other keys of an
    existing package.json, then ``extra``; ``format_version`` is the package format (the ONNX
    export passes its own)."""
    files = {p.name: sha256(p) for p in sorted(pkg.iterdir())
             if p.is_file() and p.name != "package.json" and not p.name.startswith(".")}
    old = {}
    if (pkg / "package.json").is_file():
        try:
            old = json.loads((pkg / "package.json").read_text())
        except json.JSONDecodeError:
            old = {}
    meta = {**{k: v for k, v in old.items() if k not in ("files", "format_version")}, **(extra or {}),
            "format_version": format_version, "files": files}
    atomic_write_json(pkg / "package.json", meta)
    return meta


@dataclass
class PackageInfo:
    path: Path
    meta: dict

    def file(self, name: str) -> Path | None:
        p = self.path / name
        return p if name in self.meta["files"] else None

    @property
    def has_torch_model(self) -> bool:
        return "model.pt" in self.meta["files"]

    @property
    def has_onnx_model(self) -> bool:
        return "model.onnx" in self.meta["files"]


def check_package(path: str | os.PathLike, verify_hashes: bool = True) -> PackageInfo:
    """Validate a model package folder; ModelPackageError says what is missing or mismatched."""
    pkg = Path(path)
    if not pkg.exists():
        raise ModelPackageError(f"model package {pkg} does not exist")
    if not pkg.is_dir():
        raise ModelPackageError(f"model package {pkg} is not a folder (a package is a folder with package.json)")
    manifest = pkg / "package.json"
    if not manifest.is_file():
        raise ModelPackageError(f"{pkg} is not a model package: package.json is missing "
                                "(make one with `asr package` or `asr export`)")
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelPackageError(f"{manifest} is corrupt ({e})") from None
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise ModelPackageError(f"{manifest} lacks format_version: not an asr model package")
    if not isinstance(meta.get("files"), dict) or not all(isinstance(h, str) for h in meta["files"].values()):
        # Packages are only loaded with their files' hashes checked; one without them (hand-made, or
        # from before hashes were written) is refused rather than trusted.
        raise ModelPackageError(f"{manifest} has no file hashes ('files': name -> sha256), so the package cannot "
                                "be verified; re-create it with `asr package --exp EXP --out DIR` (or `asr export`)")
    if meta["format_version"] != FORMAT_VERSION:
        raise ModelPackageError(f"{pkg} has package format version {meta['format_version']}; this toolkit reads "
                                f"version {FORMAT_VERSION}: re-export it with a matching version")
    missing = [n for n in REQUIRED if not (pkg / n).is_file()]
    if "model.pt" not in meta["files"] and "model.onnx" not in meta["files"]:
        missing.append("model.pt or model.onnx")
    missing += [n for n in meta["files"] if not (pkg / n).is_file() and n not in missing]
    if missing:
        raise ModelPackageError(f"model package {pkg} is incomplete: missing {', '.join(missing)}")
    if verify_hashes:
        bad = [n for n, h in meta["files"].items() if sha256(pkg / n) != h]
        if bad:
            raise ModelPackageError(f"model package {pkg}: file(s) {', '.join(bad)} do not match package.json "
                                    "(truncated copy or a file from another model); re-copy or re-export the package")
    return PackageInfo(pkg, meta)


def write_package(exp_dir: str | os.PathLike, out_dir: str | os.PathLike, checkpoint: str | None = None,
                  lm_exp: str | None = None, decode_yaml: str | None = None) -> Path:
    """Package an experiment: averaged (or given) checkpoint, tokens, features, CMVN, decode settings."""
    import torch

    from . import config as config_mod
    from .checkpoint import load_checkpoint
    from .decode.config import DecodeConfig

    exp, out = Path(exp_dir), Path(out_dir)
    ck = Path(checkpoint) if checkpoint else _default_checkpoint(exp)
    st = load_checkpoint(ck)
    with atomic_dir(out) as tmp:  # the package is replaced whole: never a mix of two models
        state = {"format_version": FORMAT_VERSION, "model_config": st["model_config"], "input_dim": st["input_dim"],
                 "vocab_size": st["vocab_size"], "state_dict": st["model"]}
        torch.save(state, tmp / "model.pt")
        for name in ("tokens.txt", "features.yaml", "cmvn.npz"):
            src = exp / name
            if src.is_file():
                shutil.copyfile(src, tmp / name)
            elif name != "cmvn.npz":
                raise ModelPackageError(f"{src} is missing: the experiment dir must hold {name} (written by asr train)")
        if lm_exp:
            lm_dir = Path(lm_exp)
            lm_ck = _default_checkpoint(lm_dir)
            lst = load_checkpoint(lm_ck)
            torch.save({"format_version": FORMAT_VERSION, "model_config": lst["model_config"],
                        "vocab_size": lst["vocab_size"], "state_dict": lst["model"]}, tmp / "lm.pt")
        dcfg = config_mod.load(DecodeConfig, decode_yaml) if decode_yaml else DecodeConfig()
        config_mod.save(dcfg, tmp / "decode.yaml")
        write_manifest(tmp, {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "checkpoint": str(ck),
                             "source_exp": str(exp)})
    return out


def _default_checkpoint(exp: Path) -> Path:
    ck_dir = exp / "checkpoints"
    avgs = sorted(ck_dir.glob("avg_best*.pt"))
    if avgs:
        return avgs[-1]
    if (ck_dir / "last.pt").is_file():
        return ck_dir / "last.pt"
    raise ModelPackageError(f"{exp} has no checkpoints (looked for {ck_dir}/avg_best*.pt and last.pt): train first")


def load_torch_model(pkg: PackageInfo, device: str = "cpu") -> tuple[Any, dict]:
    """The package's AcousticModel (eval mode) and its saved metadata."""
    import torch

    from . import config as config_mod
    from .models.acoustic import AcousticModel, AcousticModelConfig

    path = pkg.path / "model.pt"
    try:
        st = torch.load(path, map_location=device, weights_only=True)
        if not isinstance(st, dict) or st.get("format_version") != FORMAT_VERSION:
            got = st.get("format_version") if isinstance(st, dict) else None
            raise ModelPackageError(f"{path} has format version {got}; this toolkit reads version {FORMAT_VERSION}: "
                                    "re-create the package with `asr package` from a matching version")
        cfg = config_mod.from_dict(AcousticModelConfig, st["model_config"], f"{path}: model_config")
        model = AcousticModel(cfg, int(st["input_dim"]), int(st["vocab_size"]))
        model.load_state_dict(st["state_dict"])
    except ModelPackageError:
        raise
    except Exception as e:
        raise ModelPackageError(f"{path} cannot be loaded ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    return model.to(device).eval(), st


def add_arguments(p) -> None:
    p.add_argument("--exp", required=True, help="acoustic-model experiment dir")
    p.add_argument("--out", required=True, help="package folder to write")
    p.add_argument("--checkpoint", default=None, help="checkpoint to package (default: averaged, else last)")
    p.add_argument("--lm-exp", default=None, help="LM experiment dir to include")
    p.add_argument("--decode-conf", default=None, help="decode.yaml (e.g. with tuned alpha/beta)")


def run(args) -> int:
    out = write_package(args.exp, args.out, args.checkpoint, args.lm_exp, args.decode_conf)
    info = check_package(out)
    print(f"wrote model package {out} ({len(info.meta['files'])} files)")
    return 0
