"""Frozen-dataclass configs loaded from YAML and overridable from the command line.

Each config section is a frozen dataclass whose fields carry a one-line comment. ``load(cls, path,
overrides)`` reads YAML, rejects unknown keys and wrong types with a message naming the file and key,
and applies ``--section.key value`` style overrides (``overrides`` is a list of ``"key=value"`` or
``["--key", "value"]`` tokens, keys dotted relative to ``cls``).
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

from .atomic import atomic_write_text
from .errors import ConfigError


def _yaml():
    """PyYAML, imported when a YAML file or value is read or written: ``from_dict`` and ``to_dict``
    work without it (the torch-free runtime reads JSON)."""
    import yaml

    return yaml

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert ``value`` to the annotated type ``tp``; raise ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: {value!r} is not any of {[_type_name(a) for a in args]}")
    if origin is typing.Literal:
        if isinstance(value, bool) and not any(isinstance(a, bool) for a in args):
            # YAML 1.1 reads off/no/false (on/yes/true) as booleans: `--train.amp off`, `amp: off`
            value = next((w for w in (("on", "yes", "true") if value else ("off", "no", "false")) if w in args), value)
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (list, tuple):
        if isinstance(value, str):
            value = _yaml().safe_load(value) if value.strip().startswith("[") else [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {unknown} for {cls.__name__}; valid keys: {sorted(fields)}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{source}: {k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as e:  # a value check in __post_init__: say which file it came from
        raise ConfigError(f"{source}: {e}") from None


def to_dict(obj: Any) -> dict:
    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        return v

    return conv(obj)


def parse_overrides(tokens: Iterable[str]) -> dict[str, str]:
    """``["--train.lr", "1e-3", "model.hidden=256"]`` -> ``{"train.lr": "1e-3", "model.hidden": "256"}``."""
    out: dict[str, str] = {}
    toks = list(tokens)
    i = 0
    while i < len(toks):
        t = toks[i]
        key = t[2:] if t.startswith("--") else t
        if "=" in key:
            k, v = key.split("=", 1)
            out[k.replace("-", "_")] = v
            i += 1
        else:
            if i + 1 >= len(toks):
                raise ConfigError(f"override {t!r} has no value (use --key value or key=value)")
            out[key.replace("-", "_")] = toks[i + 1]
            i += 2
    return out


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    cur[parts[-1]] = value


def _parse_scalar(s: str) -> Any:
    try:
        return _yaml().safe_load(s)
    except _yaml().YAMLError:
        return s


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = _yaml().safe_load(path.read_text(encoding="utf-8"))
    except (_yaml().YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping, got {type(data).__name__}")
    return data


def load(cls: type[T], path: str | os.PathLike | None = None, overrides: Mapping[str, str] | None = None,
         base: T | None = None) -> T:
    """Load ``cls`` from YAML ``path`` (or from ``base``/defaults), then apply dotted overrides."""
    data: dict = to_dict(base) if base is not None else {}
    source = str(path) if path is not None else cls.__name__
    if path is not None:
        for k, v in read_yaml(path).items():
            data[k] = v
    for k, v in (overrides or {}).items():
        _set_dotted(data, k, _parse_scalar(v) if isinstance(v, str) else v)
    src = source if not overrides else f"{source} (+ overrides)"
    return from_dict(cls, data, src)


def save(obj: Any, path: str | os.PathLike) -> None:
    atomic_write_text(path, _yaml().safe_dump(to_dict(obj), sort_keys=False))


def split_overrides(tokens: list[str], sections: tuple[str, ...] = ("model", "train")) -> dict[str, dict[str, str]]:
    """``--model.hidden 320 --train.lr 1e-3`` -> {"model": {"hidden": "320"}, "train": {"lr": "1e-3"}}."""
    out: dict[str, dict[str, str]] = {}
    for k, v in parse_overrides(tokens).items():
        if "." not in k:
            raise ConfigError(f"override {k!r} must be prefixed by its section, e.g. --train.lr or --model.hidden")
        section, key = k.split(".", 1)
        if section not in sections:
            raise ConfigError(f"unknown override section {section!r}; use " + " or ".join(f"--{s}.KEY" for s in sections))
        out.setdefault(section, {})[key] = v
    return out
