"""Fine-tuning: start a new experiment from the weights of a trained model (``--init-from``).

``asr train --init-from SRC`` and ``asr train-lm --init-from SRC`` take ``SRC`` as

* a model package folder (``asr package``; its ``model.pt`` through the one loader,
  :func:`asr.package.load_torch_model`, or its ``lm.pt``), e.g. the shipped
  ``asr/pretrained/<NAME>/torch`` (float16-stored weights, loaded into float32 modules);
* a checkpoint file (``exp/checkpoints/avg_best3.pt``, ``last.pt``, ``epoch_0007.pt``), whose
  token set, feature settings and CMVN are read from its experiment dir (the folder above
  ``checkpoints/``);
* an experiment dir (its averaged checkpoint, else ``last.pt``).

Before anything trains, :func:`check_acoustic` compares the new experiment with the source and
names every difference in one :class:`~asr.errors.ConfigError`: the architecture (every
:class:`AcousticModelConfig` field that shapes weights; ``dropout`` may differ), the feature
dimension, the feature settings (the training data's ``feats.yaml`` against the source's
``features.yaml``) and the token set. A different token set is refused unless the output layer is
re-initialised on purpose (``--train.reinit_output true``): every other weight is loaded, the CTC
head starts from fresh random weights over the new tokens. (For the LM, tokens enter through the
embedding and leave through the output layer: ``reinit_output`` re-initialises both.)

CMVN: by default the new experiment normalises with the *source's* CMVN stats (``--init-cmvn
init``): its weights were trained on features normalised by them, so the fine-tuning run starts
exactly where the source stands (its dev loss at step 0 is the source's), and statistics of a few
minutes of one speaker would be noisy and shift every input the first layer sees.
``--init-cmvn data`` uses the ``--cmvn`` stats of the new training data instead (a large new
corpus, another channel); the trainer then prints how far they are from the source's.

The experiment records where it started in ``init.json`` (the source's path, the weights file and
its sha256, what was re-initialised, frozen, and which CMVN was used and why). The run has its own
schedule (``conf/train/finetune.yaml``: lower LR, short warm-up, few epochs): nothing of the
source's optimiser or epoch count is carried over. After a kill it resumes from its own
``checkpoints/last.pt`` like any run; a resumed experiment refuses an ``--init-from`` whose weights
differ from the ones it started from.

``--train.freeze frontend,lstm.0`` keeps parameters fixed (not given to the optimiser):
``frontend`` (the conv front end), ``lstm.N`` (layer N of the LSTM stack, both directions),
``proj``, ``head``; for the LM ``embed``, ``lstm.N``, ``out``.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from . import config as config_mod
from .atomic import atomic_write_json
from .errors import CheckpointError, ConfigError, ModelPackageError

INIT_RECORD = "init.json"  # in the experiment dir
# model-config fields that do not shape weights: a fine-tuning run may change them
FREE_FIELDS = ("dropout",)
# parameters that hold one row (or column) per token: the "output layer" reinit_output re-initialises
OUTPUT_PARAMS = {"acoustic": ("head.",), "lm": ("out.", "embed.")}


@dataclass
class InitSource:
    """The weights and settings a fine-tuning run starts from."""

    path: Path  # what --init-from named
    kind: str  # "package", "checkpoint" or "experiment"
    weights_file: Path  # the file the weights came from (model.pt, lm.pt, a checkpoint)
    model_config: dict  # the source's model config (AcousticModelConfig / LMConfig fields)
    vocab_size: int
    state_dict: dict[str, torch.Tensor]
    tokens_file: Path | None  # the source's tokens.txt
    input_dim: int | None = None  # acoustic model: feature dimension
    features_file: Path | None = None  # the source's features.yaml (acoustic)
    cmvn_file: Path | None = None  # the source's cmvn.npz (None: it had none)
    extra: dict = field(default_factory=dict)

    def sha256(self) -> str:
        from .package import sha256

        return sha256(self.weights_file)


def _files_dir(ckpt: Path) -> Path:
    """The experiment dir of a checkpoint (``exp/checkpoints/x.pt`` -> ``exp``)."""
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def _opt(p: Path) -> Path | None:
    return p if p.is_file() else None


def load_source(path: str | os.PathLike, kind: str = "acoustic") -> InitSource:
    """The weights and settings at ``path`` (package, checkpoint or experiment dir) for a ``kind``
    ("acoustic" or "lm") model; a path that is none of these is a ConfigError saying what it is."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"--init-from {p} does not exist: give a model package folder, a checkpoint file or "
                          "an experiment dir")
    if p.is_dir() and (p / "package.json").is_file():
        return _from_package(p, kind)
    if p.is_dir():
        from .package import _default_checkpoint

        try:
            ck = _default_checkpoint(p)
        except ModelPackageError:
            raise ConfigError(f"--init-from {p} is a folder with neither package.json (a model package) nor "
                              "checkpoints/ (an experiment dir)") from None
        return dataclasses.replace(_from_checkpoint(ck, kind), path=p, kind="experiment")
    return _from_checkpoint(p, kind)


def _from_package(p: Path, kind: str) -> InitSource:
    from .package import check_package, load_torch_model

    info = check_package(p)
    if kind == "acoustic":
        if not info.has_torch_model:
            raise ModelPackageError(f"--init-from {p}: the package has no model.pt (an ONNX package cannot be "
                                    "fine-tuned); give its PyTorch package (asr/pretrained/<NAME>/torch, or the "
                                    "folder `asr package` wrote)")
        model, st = load_torch_model(info)
        return InitSource(p, "package", p / "model.pt", dict(st["model_config"]), int(st["vocab_size"]),
                          model.state_dict(), p / "tokens.txt", int(st["input_dim"]), p / "features.yaml",
                          _opt(p / "cmvn.npz"))
    from .models.lm import load_lm

    lm_file = p / "lm.pt"
    if "lm.pt" not in info.meta["files"]:
        raise ModelPackageError(f"--init-from {p}: the package has no lm.pt (no LM to start from); give one made "
                                "with `asr package --lm-exp`, or an LM experiment dir or checkpoint")
    lm = load_lm(lm_file)  # float32 modules, whatever the file stores
    return InitSource(p, "package", lm_file, config_mod.to_dict(lm.cfg), lm.vocab_size, lm.state_dict(),
                      p / "tokens.txt")


def _float32(sd: dict) -> dict[str, torch.Tensor]:
    """Float tensors as float32 (the shipped package stores float16)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


def _from_checkpoint(ck: Path, kind: str) -> InitSource:
    from .checkpoint import load_checkpoint

    st = load_checkpoint(ck)
    got = st.get("kind", "acoustic")
    if got != kind:
        raise CheckpointError(f"--init-from {ck} is a checkpoint of the {got} model, not of the {kind} model")
    missing = [k for k in ("model", "model_config", "vocab_size") if k not in st]
    if missing:
        raise CheckpointError(f"--init-from {ck} lacks {', '.join(missing)}: not a model checkpoint of asr train")
    exp = _files_dir(ck)
    return InitSource(ck, "checkpoint", ck, dict(st["model_config"]), int(st["vocab_size"]), _float32(st["model"]),
                      _opt(exp / "tokens.txt"), int(st["input_dim"]) if st.get("input_dim") else None,
                      _opt(exp / "features.yaml"), _opt(exp / "cmvn.npz"))


# ----------------------------------------------------------------------------- checks


def architecture_differences(source_cfg: Any, new_cfg: Any) -> list[str]:
    """``field: source vs new`` for every weight-shaping field that differs."""
    return [f"{f.name} {getattr(source_cfg, f.name)!r} (source) vs {getattr(new_cfg, f.name)!r} (new)"
            for f in dataclasses.fields(new_cfg)
            if f.name not in FREE_FIELDS and getattr(source_cfg, f.name) != getattr(new_cfg, f.name)]


def token_differences(source_tokens: Path | None, new_tokens: str | os.PathLike) -> str | None:
    """None when the token sets are the same list (and, for BPE, the same bpe.model), else what differs."""
    from .package import sha256
    from .tokens import BPE_MODEL_NAME, read_tokens_txt

    if source_tokens is None:
        return "the source has no tokens.txt to compare with"
    a, b = read_tokens_txt(Path(source_tokens)), read_tokens_txt(Path(new_tokens))
    if a != b:
        only_a, only_b = [t for t in a if t not in b], [t for t in b if t not in a]
        what = f"{len(a)} tokens (source) vs {len(b)} (new)"
        if only_a or only_b:
            what += f"; only in the source: {only_a[:10]}, only in the new set: {only_b[:10]}"
        else:
            what += "; same tokens in another order"
        return what
    bpe_a, bpe_b = Path(source_tokens).with_name(BPE_MODEL_NAME), Path(new_tokens).with_name(BPE_MODEL_NAME)
    if bpe_a.is_file() != bpe_b.is_file() or (bpe_a.is_file() and sha256(bpe_a) != sha256(bpe_b)):
        return f"the same tokens.txt but another {BPE_MODEL_NAME}"
    return None


def feature_differences(source_file: Path | None, data_feats_yaml: Path) -> list[str]:
    """``field: source vs data`` for the FeatureConfig fields that differ; raises when either is missing."""
    from .features import FeatureConfig

    if source_file is None:
        raise ConfigError("the source has no features.yaml, so the features of the new data cannot be checked "
                          "against it; start from a package (asr package) or an experiment dir that holds one")
    if not data_feats_yaml.is_file():
        raise ConfigError(f"{data_feats_yaml} is missing, so the features of {data_feats_yaml.parent} cannot be "
                          "checked against the starting model's; extract them with asr extract-features")
    a = config_mod.load(FeatureConfig, source_file)
    b = config_mod.load(FeatureConfig, data_feats_yaml)
    return [f"{f.name} {getattr(a, f.name)!r} (source) vs {getattr(b, f.name)!r} (data)"
            for f in dataclasses.fields(FeatureConfig) if getattr(a, f.name) != getattr(b, f.name)]


def check_acoustic(src: InitSource, mcfg, input_dim: int, tokens: str | os.PathLike, train_data: Path,
                   reinit_output: bool) -> None:
    """Refuse a fine-tuning run whose architecture, features or token set differ from ``src``
    (one ConfigError listing every difference); the token set may differ with ``reinit_output``."""
    from .models.acoustic import AcousticModelConfig

    scfg = config_mod.from_dict(AcousticModelConfig, src.model_config, f"{src.weights_file}: model_config")
    problems = []
    arch = architecture_differences(scfg, mcfg)
    if arch:
        problems.append("architecture: " + "; ".join(arch) + " (drop --model-conf/--model.* to take the source's)")
    if src.input_dim is not None and src.input_dim != input_dim:
        problems.append(f"feature dimension: {src.input_dim} (source) vs {input_dim} ({train_data}/feats.scp)")
    feats = feature_differences(src.features_file, train_data / "feats.yaml")
    if feats:
        problems.append("feature settings: " + "; ".join(feats) + f" (extract the features of {train_data} with the "
                        f"source's {src.features_file})")
    _refuse(src, "experiment", problems, tokens, reinit_output, "train a new output layer over the new tokens")


def check_lm(src: InitSource, mcfg, tokens: str | os.PathLike, reinit_output: bool) -> None:
    from .models.lm import LMConfig

    scfg = config_mod.from_dict(LMConfig, src.model_config, f"{src.weights_file}: model_config")
    problems = []
    arch = architecture_differences(scfg, mcfg)
    if arch:
        problems.append("architecture: " + "; ".join(arch) + " (give --conf with the source's LM config)")
    _refuse(src, "LM experiment", problems, tokens, reinit_output, "re-initialise the embedding and output layer")


def _refuse(src: InitSource, what: str, problems: list[str], tokens, reinit_output: bool, reinit_does: str) -> None:
    """Add the token-set difference (unless ``reinit_output``) and raise one ConfigError listing all."""
    tok = token_differences(src.tokens_file, tokens)
    if tok and not reinit_output:
        problems.append(f"token set: {tok} (use the source's {src.tokens_file}, or --train.reinit_output true to "
                        f"{reinit_does})")
    if problems:
        raise ConfigError(f"--init-from {src.path} does not fit this {what}:\n  " + "\n  ".join(problems))


def source_model_config(src: InitSource, cls, model_conf: str | None, overrides: dict | None):
    """The new model's config: ``model_conf`` (+ overrides) when given, else the source's (+ overrides)."""
    if model_conf:
        return config_mod.load(cls, model_conf, overrides)
    base = config_mod.from_dict(cls, src.model_config, f"{src.weights_file}: model_config")
    return config_mod.load(cls, None, overrides, base=base)


# ----------------------------------------------------------------------------- weights


def load_into(model: nn.Module, src: InitSource, kind: str, reinit_output: bool) -> list[str]:
    """Copy ``src``'s weights into ``model`` (shapes checked); with ``reinit_output`` the output
    layer keeps ``model``'s fresh weights. Returns the names left re-initialised."""
    own = model.state_dict()
    skip = [k for k in own if reinit_output and k.startswith(OUTPUT_PARAMS[kind])]
    bad = [f"{k}: {tuple(src.state_dict[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
           if k not in skip and k in src.state_dict and src.state_dict[k].shape != v.shape]
    missing = [k for k in own if k not in skip and k not in src.state_dict]
    if bad or missing:
        raise ConfigError(f"--init-from {src.path}: the weights do not fit the model "
                          f"({'; '.join(bad + [f'{k} missing' for k in missing])[:400]})")
    with torch.no_grad():
        for k, v in own.items():
            if k not in skip:
                v.copy_(src.state_dict[k].to(v.dtype))
    return skip


def freeze(model: nn.Module, names: Sequence[str]) -> list[str]:
    """Set ``requires_grad=False`` on the parameters the ``names`` select (see the module doc);
    returns the frozen parameter names. An unknown name is a ConfigError listing the choices."""
    params = dict(model.named_parameters())
    n_layers = getattr(getattr(model, "lstm", None), "num_layers", 0)
    groups = {top: [k for k in params if k.split(".")[0] == top] for top in {k.split(".")[0] for k in params}}
    groups.pop("lstm", None)
    for i in range(n_layers):
        groups[f"lstm.{i}"] = [k for k in params if k.startswith("lstm.")
                               and (k.endswith(f"_l{i}") or k.endswith(f"_l{i}_reverse"))]
    frozen = []
    for name in names:
        if name not in groups:
            raise ConfigError(f"train.freeze: {name!r} names no part of the model; choose from "
                              f"{', '.join(sorted(groups))}")
        for k in groups[name]:
            params[k].requires_grad_(False)
            frozen.append(k)
    return frozen


# ----------------------------------------------------------------------------- CMVN and the record

CMVN_WHY = {
    "init": "the starting model's stats: its weights were trained on features normalised by them, so the run "
            "starts where the model stands (stats of a few minutes of speech would shift every input)",
    "data": "the new training data's stats (--init-cmvn data)",
}


def choose_cmvn(src: InitSource, mode: str, data_cmvn: str | None):
    """(the CMVN the new experiment uses or None, the file it came from, a sentence saying why)."""
    from .features import CMVN

    if mode == "init":
        if src.cmvn_file is None:
            return None, None, "none: the starting model was trained without global CMVN stats"
        note = CMVN_WHY["init"] + (f"; --cmvn {data_cmvn} is not used (--init-cmvn data would use it)"
                                   if data_cmvn else "")
        return CMVN.load(src.cmvn_file), src.cmvn_file, note
    if mode != "data":
        raise ConfigError(f"--init-cmvn {mode!r}: use init or data")
    if not data_cmvn:
        raise ConfigError("--init-cmvn data needs --cmvn (the stats of the new training features)")
    cmvn = CMVN.load(data_cmvn)
    note = CMVN_WHY["data"]
    if src.cmvn_file is not None:
        old = CMVN.load(src.cmvn_file)
        if old.dim == cmvn.dim:
            shift = float(np.max(np.abs(cmvn.mean - old.mean) / old.std))
            note += f"; its means lie up to {shift:.2f} source std from the source's"
    return cmvn, Path(data_cmvn), note


def write_record(exp: Path, src: InitSource, **facts: Any) -> dict:
    """``exp/init.json``: where the experiment started and what was done to the source."""
    rec = {"init_from": str(src.path.resolve()), "kind": src.kind, "weights": str(src.weights_file.resolve()),
           "sha256": src.sha256(), **facts}
    atomic_write_json(exp / INIT_RECORD, rec)
    return rec


def check_resumed_source(exp: Path, src: InitSource) -> None:
    """An experiment being resumed must be resumed from the weights it started from."""
    rec_file = exp / INIT_RECORD
    if not (exp / "checkpoints" / "last.pt").is_file():
        return
    if not rec_file.is_file():
        raise ConfigError(f"{exp} holds a run that was not started with --init-from (no {INIT_RECORD}), so "
                          f"resuming it cannot start from {src.path}: give another --exp, or --no-resume")
    rec = json.loads(rec_file.read_text(encoding="utf-8"))
    if rec.get("sha256") != src.sha256():
        raise ConfigError(f"{exp} is a fine-tuning run started from {rec.get('weights')} (sha256 "
                          f"{str(rec.get('sha256'))[:12]}), not from {src.weights_file}: resume it with the same "
                          "--init-from, or start a new experiment (another --exp, or --no-resume)")
