"""``runtime.json``: the typed, frozen description of an ONNX package that ``asr export`` writes and
the onnxruntime backend reads (JSON, so the runtime needs no YAML parser). Read strictly: an unknown
key, a missing field or a wrong type is a :class:`~asr.errors.ModelPackageError` naming the file."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .. import config as config_mod
from ..atomic import atomic_write_json
from ..decode.config import DecodeConfig
from ..errors import ConfigError, ModelPackageError
from ..features.config import FeatureConfig

RUNTIME_FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelSpec:
    input_dim: int  # feature dimension the graphs read
    vocab_size: int  # output tokens (blank = 0)
    subsampling: int  # feature frames per output frame
    min_input_frames: int  # shortest input the front end takes (the runtime zero-pads shorter ones)
    bidirectional: bool  # BiLSTM (offline only) or unidirectional
    layers: int  # LSTM layers
    hidden: int  # LSTM units per direction
    streaming: bool  # stream.onnx was written (unidirectional models): chunked streaming with carried state


@dataclass(frozen=True)
class LMSpec:
    layers: int  # LSTM LM layers (state shape of lm.onnx)
    hidden: int  # LSTM LM units
    parity_max_abs_diff: float = 0.0  # export's check of lm.onnx against PyTorch (log-probs and state)


@dataclass(frozen=True)
class NgramSpec:
    file: str  # the n-gram LM file in the package (lm.arpa, or lm.binary: a KenLM binary)
    order: int  # n-gram order
    ngrams: int  # n-grams of every order together


@dataclass(frozen=True)
class RuntimeSpec:
    format_version: int  # of this file
    features: FeatureConfig  # the front end (with the feat_*.npy matrices)
    model: ModelSpec  # the acoustic graphs
    decode: DecodeConfig = field(default_factory=DecodeConfig)  # decode settings (tuned alpha/beta)
    feature_matrices: list[str] = field(default_factory=list)  # feat_*.npy files of the numpy front end
    lm: Optional[LMSpec] = None  # lm.onnx, when the package has an LM
    cmvn: bool = False  # cmvn.npz is in the package
    ngram: Optional[NgramSpec] = None  # lm.arpa or lm.binary, when the package has a word n-gram LM


def read_runtime_spec(pkg: Path) -> RuntimeSpec:
    from ..package import read_json_object

    path = Path(pkg) / "runtime.json"
    data = read_json_object(path, f"{pkg}: no runtime.json; this is not an ONNX runtime package (make one with "
                            "`asr export --model PKG --out DIR`)", "; export the package again with `asr export`")
    try:
        spec = config_mod.from_dict(RuntimeSpec, data, str(path))
    except ConfigError as e:
        raise ModelPackageError(f"{e}; export the package again with `asr export`") from None
    if spec.format_version != RUNTIME_FORMAT_VERSION:
        raise ModelPackageError(f"{path} has format version {spec.format_version}; this toolkit reads version "
                                f"{RUNTIME_FORMAT_VERSION}: export the package again with a matching version")
    return spec


def write_runtime_spec(path: Path, spec: RuntimeSpec) -> None:
    atomic_write_json(path, config_mod.to_dict(spec))
