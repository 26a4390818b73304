"""Model packages: one self-contained folder that ``transcribe``, the runtime and export load.

Contents (``format_version`` 1)::

    model.pt        {"format_version", "model_config", "input_dim", "vocab_size", "state_dict"}
    tokens.txt      the token set (blank first)
    bpe.model       the sentencepiece model, for a BPE token set (asr.tokens.BPETokenizer)
    features.yaml   the FeatureConfig used in training
    cmvn.npz        global CMVN statistics (optional if the model used per-utterance CMVN)
    decode.yaml     DecodeConfig (method, beam, tuned alpha/beta)
    lm.pt, lm.yaml  optional LSTM language model
    lm.arpa         optional word n-gram LM (ARPA text; read torch-free by asr.ngram, ONNX packages too)
    lm.binary       or the same as a KenLM binary file (build_binary's; scored through the kenlm module)
    package.json    {"format_version", "files": {name: sha256}, ...}

Loading checks the format version and every file's hash, so a truncated copy or a file swapped in
from another model is refused with a message naming the file. A package whose package.json has no
hashes is refused too (it cannot be verified): re-create it with ``asr package`` or ``asr export``.
``model.pt`` is read with ``torch.load(weights_only=True)``: tensors and plain values only, no code.

The files of a package are read here, once for both backends of :class:`asr.recognizer.Recognizer`
(PyTorch and onnxruntime), so a damaged file gives the same :class:`ModelPackageError` naming it
whichever loads it (a package written by a broken or foreign exporter can have damaged files whose
hashes match): :func:`load_package_tokenizer` (tokens.txt), :func:`load_cmvn` (cmvn.npz: plain
arrays only, of the features' dimension), :func:`read_json_object` (package.json; runtime.json
through :mod:`asr.recognizer.spec`), :func:`open_onnx_session` (model.onnx, lm.onnx, ...) and
:func:`load_torch_model` (model.pt, the one loader of it). This module imports no
torch at module level (the runtime imports it).
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_dir, atomic_write_json
from .errors import ConfigError, ModelPackageError, TextError
from .tokens import BPE_MODEL_NAME

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


def read_json_object(path: Path, if_missing: str, fix: str) -> dict:
    """A package's JSON file (package.json, runtime.json) as a dict; a missing file raises
    ``if_missing``, a corrupt one or one that holds no JSON object a ModelPackageError naming it
    and ending with ``fix``."""
    if not path.is_file():
        raise ModelPackageError(if_missing)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelPackageError(f"{path} is corrupt ({e}){fix}") from None
    if not isinstance(obj, dict):
        raise ModelPackageError(f"{path} holds no JSON object{fix}")
    return obj


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
    meta = read_json_object(manifest, f"{pkg} is not a model package: package.json is missing "
                             "(make one with `asr package` or `asr export`)", "")
    if "format_version" not in meta:
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
    if not {"model.pt", "model.onnx", "model.int8.onnx"} & set(meta["files"]):
        missing.append("model.pt or model.onnx")  # (an int8-only ONNX package, as the shipped one, is fine)
    missing += [n for n in meta["files"] if not (pkg / n).is_file() and n not in missing]
    if missing:
        raise ModelPackageError(f"model package {pkg} is incomplete: missing {', '.join(missing)}")
    if verify_hashes:
        bad = [n for n, h in meta["files"].items() if sha256(pkg / n) != h]
        if bad:
            raise ModelPackageError(f"model package {pkg}: file(s) {', '.join(bad)} do not match package.json "
                                    "(truncated copy or a file from another model); re-copy or re-export the package")
    return PackageInfo(pkg, meta)


NGRAM_FILE = "lm.arpa"  # a package's word n-gram LM
NGRAM_BINARY_FILE = "lm.binary"  # ... or that LM as a KenLM binary file (asr.ngram.binary; needs the kenlm module)


def package_ngram_file(pkg: str | os.PathLike) -> Path | None:
    """The package's word n-gram LM file (lm.arpa or lm.binary), or None without one."""
    for name in (NGRAM_FILE, NGRAM_BINARY_FILE):
        if (Path(pkg) / name).is_file():
            return Path(pkg) / name
    return None


def write_package(exp_dir: str | os.PathLike, out_dir: str | os.PathLike, checkpoint: str | None = None,
                  lm_exp: str | None = None, decode_yaml: str | None = None, arpa: str | None = None) -> Path:
    """Package an experiment: averaged (or given) checkpoint, tokens, features, CMVN, decode settings,
    optional LSTM LM (``lm_exp``) and word n-gram LM (``arpa``: an ARPA file, stored as lm.arpa, or a
    KenLM binary, stored as lm.binary; checked by reading it)."""
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
        for name in ("tokens.txt", "features.yaml", "cmvn.npz", BPE_MODEL_NAME):
            src = exp / name
            if src.is_file():
                shutil.copyfile(src, tmp / name)
            elif name not in ("cmvn.npz", BPE_MODEL_NAME):
                raise ModelPackageError(f"{src} is missing: the experiment dir must hold {name} (written by asr train)")
        if lm_exp:
            lm_dir = Path(lm_exp)
            _check_same_tokens(exp, lm_dir)
            lm_ck = _default_checkpoint(lm_dir)
            lst = load_checkpoint(lm_ck)
            torch.save({"format_version": FORMAT_VERSION, "model_config": lst["model_config"],
                        "vocab_size": lst["vocab_size"], "state_dict": lst["model"]}, tmp / "lm.pt")
        if arpa:
            from .ngram.arpa import read_arpa
            from .ngram.binary import is_kenlm_binary, read_binary_vocab

            if is_kenlm_binary(arpa):
                read_binary_vocab(arpa)  # a damaged header or vocabulary is refused here
                shutil.copyfile(arpa, tmp / NGRAM_BINARY_FILE)
            else:
                read_arpa(arpa)  # a malformed file is refused here, not at the first decode
                if str(arpa).endswith(".gz"):  # stored plain, as export and the runtime read it
                    import gzip

                    with gzip.open(arpa, "rb") as src, open(tmp / NGRAM_FILE, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                else:
                    shutil.copyfile(arpa, tmp / NGRAM_FILE)
        dcfg = config_mod.load(DecodeConfig, decode_yaml) if decode_yaml else DecodeConfig()
        config_mod.save(dcfg, tmp / "decode.yaml")
        write_manifest(tmp, {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "checkpoint": str(ck),
                             "source_exp": str(exp)})
    return out


def _check_same_tokens(exp: Path, lm_dir: Path) -> None:
    """The LM must be trained on the acoustic model's units (tokens.txt and, for BPE, bpe.model)."""
    for name in ("tokens.txt", BPE_MODEL_NAME):
        a, b = exp / name, lm_dir / name
        if a.is_file() != b.is_file() or (a.is_file() and sha256(a) != sha256(b)):
            raise ModelPackageError(f"{lm_dir} was trained on other units than {exp}: their {name} differ (or only "
                                    f"one has it); train the LM with --tokens {exp / 'tokens.txt'}")


def _default_checkpoint(exp: Path) -> Path:
    ck_dir = exp / "checkpoints"
    avgs = sorted(ck_dir.glob("avg_best*.pt"))
    if avgs:
        return avgs[-1]
    if (ck_dir / "last.pt").is_file():
        return ck_dir / "last.pt"
    raise ModelPackageError(f"{exp} has no checkpoints (looked for {ck_dir}/avg_best*.pt and last.pt): train first")


def load_torch_model(pkg: PackageInfo, device: str = "cpu") -> tuple[Any, dict]:
    """The package's AcousticModel (eval mode) and its saved metadata (the one loader of model.pt).

    Strict: the format version, ``model_config`` (no unknown keys), ``input_dim``, ``vocab_size``
    and a state dict with exactly the model's keys and shapes; anything else is a
    ModelPackageError naming the file and what is wrong."""
    import torch

    from . import config as config_mod
    from .models.acoustic import AcousticModel, AcousticModelConfig

    path = pkg.path / "model.pt"
    if not path.is_file():
        raise ModelPackageError(f"{pkg.path} has no model.pt (an ONNX package?); point at a folder written by "
                                "`asr package`")
    try:
        st = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, pickle.UnpicklingError) as e:
        # RuntimeError/EOFError/BadZipFile: truncated or not a torch file; UnpicklingError: content
        # that weights_only=True refuses (pickled objects, code)
        raise ModelPackageError(f"{path} cannot be loaded ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                                "re-create the package with `asr package`") from None
    if not isinstance(st, dict) or st.get("format_version") != FORMAT_VERSION:
        got = st.get("format_version") if isinstance(st, dict) else None
        raise ModelPackageError(f"{path} has format version {got}; this toolkit reads version {FORMAT_VERSION}: "
                                "re-create the package with `asr package` from a matching version")
    missing = [k for k in ("model_config", "input_dim", "vocab_size", "state_dict") if k not in st]
    if missing:
        raise ModelPackageError(f"{path} lacks {', '.join(missing)}: not written by `asr package`; "
                                "re-create the package")
    try:
        cfg = config_mod.from_dict(AcousticModelConfig, st["model_config"], f"{path}: model_config")
    except ConfigError as e:
        raise ModelPackageError(str(e)) from None
    model = AcousticModel(cfg, int(st["input_dim"]), int(st["vocab_size"]))
    sd = st["state_dict"]
    want = model.state_dict()
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelPackageError(f"{path}: state_dict is not a mapping of tensors; re-create the package")
    problems = []
    if set(want) - set(sd):
        problems.append(f"missing key(s) {', '.join(sorted(set(want) - set(sd)))}")
    if set(sd) - set(want):
        problems.append(f"unexpected key(s) {', '.join(sorted(set(sd) - set(want)))}")
    problems += [f"{k} has shape {tuple(sd[k].shape)}, the model_config needs {tuple(v.shape)}"
                 for k, v in want.items() if k in sd and sd[k].shape != v.shape]
    if problems:
        raise ModelPackageError(f"{path}: the state dict does not fit its model_config ({'; '.join(problems)[:400]}): "
                                "the file is damaged or from another model; re-create the package with `asr package`")
    model.load_state_dict(sd)
    return model.to(device).eval(), st


# ---------------------------------------------------------------------------------------------
# the other files of a package (torch-free: the ONNX runtime loads them too)


def load_package_tokenizer(pkg: str | os.PathLike):
    """The token set of ``pkg/tokens.txt`` (+ ``bpe.model``), read by the toolkit's one tokens.txt
    reader (:mod:`asr.tokens`); a malformed file is a ModelPackageError naming it."""
    from .tokens import load_tokenizer

    try:
        return load_tokenizer(Path(pkg) / "tokens.txt")
    except TextError as e:
        raise ModelPackageError(f"{e}; the package's tokens.txt is damaged: re-create the package") from None


def load_cmvn(pkg: str | os.PathLike, dim: int, dim_source: str) -> tuple[np.ndarray, np.ndarray, int] | None:
    """``(mean, std, count)`` of ``pkg/cmvn.npz`` (float32), or None when the package has none.

    The file must hold plain arrays (``allow_pickle=False``: a pickled object is refused, not run),
    ``mean`` and ``std`` of ``dim`` values each (``dim`` is the feature dimension that
    ``dim_source``, features.yaml or runtime.json, gives), finite, with ``std > 0``."""
    path = Path(pkg) / "cmvn.npz"
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):  # an .npz is a zip archive
        raise ModelPackageError(f"{path} is not an .npz archive (truncated, or another kind of file); "
                                "re-create the package")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("mean", "std") if k not in z.files]
            if missing:
                raise ModelPackageError(f"{path} lacks {' and '.join(missing)} (it holds {sorted(z.files)}); "
                                        "re-create the package")
            mean, std = z["mean"], z["std"]
            count = z["count"] if "count" in z.files else np.int64(0)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ModelPackageError(f"{path} holds pickled Python objects, which are not loaded (CMVN stats are "
                                    "plain float arrays mean and std); re-create the package") from None
        raise ModelPackageError(f"{path} is unreadable ({e}); re-create the package") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ModelPackageError(f"{path} is unreadable or truncated ({type(e).__name__}: {e}); "
                                "re-create the package") from None
    for name, a in (("mean", mean), ("std", std)):
        if a.dtype.kind not in "fiu" or a.ndim != 1:
            raise ModelPackageError(f"{path}: {name} is a {a.dtype} array of shape {a.shape}, not a vector of "
                                    "numbers; re-create the package")
    if len(mean) != dim or len(std) != dim:
        got = len(mean) if len(mean) != dim else len(std)
        raise ModelPackageError(f"{path} expects {got}-dimensional features but {dim_source} gives {dim}: "
                                "the files come from different models; re-create the package")
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise ModelPackageError(f"{path}: mean/std hold non-finite values or std <= 0; recompute the CMVN stats "
                                "and re-create the package")
    if np.asarray(count).shape != () or np.asarray(count).dtype.kind not in "iuf":
        raise ModelPackageError(f"{path}: count is not a number; re-create the package")
    return mean.astype(np.float32), std.astype(np.float32), int(count)


def open_onnx_session(path: str | os.PathLike, threads: int = 1, inter_threads: int = 1):
    """An onnxruntime CPU session of ``path`` with explicit intra/inter-op thread counts (0 = ORT's
    default); a file onnxruntime cannot load (truncated, random bytes, an invalid graph) is a
    ModelPackageError naming it."""
    import onnxruntime as ort
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = int(inter_threads)
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except (ort_errors.InvalidProtobuf, ort_errors.InvalidArgument, ort_errors.InvalidGraph, ort_errors.Fail,
            ort_errors.NotImplemented, ort_errors.NoSuchFile) as e:
        # what onnxruntime raises for a file it cannot load: not a protobuf, no graph, an invalid
        # or unsupported graph, a missing file
        reason = str(e).split(" failed:", 1)[-1].strip()[:200]
        raise ModelPackageError(f"{path} cannot be loaded by onnxruntime ({type(e).__name__}: {reason}); the file is "
                                "damaged or not an ONNX model: export the package again with `asr export`") from None


def add_arguments(p) -> None:
    p.add_argument("--exp", required=True, help="acoustic-model experiment dir")
    p.add_argument("--out", required=True, help="package folder to write")
    p.add_argument("--checkpoint", default=None, help="checkpoint to package (default: averaged, else last)")
    p.add_argument("--lm-exp", default=None, help="LM experiment dir to include")
    p.add_argument("--decode-conf", default=None, help="decode.yaml (e.g. with tuned alpha/beta)")
    p.add_argument("--ngram", "--arpa", dest="arpa", default=None,
                   help="word n-gram LM to include: an ARPA file (e.g. from asr build-ngram; .gz too) -> lm.arpa, "
                        "or a KenLM binary file (build-ngram --binary) -> lm.binary")


def load_package_ngram(pkg: str | os.PathLike):
    """The package's word n-gram LM (:class:`asr.ngram.model.NgramLM` of lm.arpa, or
    :class:`asr.ngram.binary.KenlmLM` of lm.binary), or None without one."""
    path = package_ngram_file(pkg)
    if path is None:
        return None
    from .ngram.model import load_ngram

    return load_ngram(path)


def run(args) -> int:
    out = write_package(args.exp, args.out, args.checkpoint, args.lm_exp, args.decode_conf, args.arpa)
    info = check_package(out)
    print(f"wrote model package {out} ({len(info.meta['files'])} files)")
    return 0
