"""Loading and validating params.yaml against :mod:`shortcutlab.schema` (the only place that knows it).

``load(path)`` validates the *whole* file, so a typo anywhere fails fast, before any work, exactly as
under ``dvc repro``: an unknown, missing or duplicated key, a missing section, a wrong type or an
out-of-range value raises :class:`ParamsError` with a message that names the key
(``train_lazy.epoch: unknown key``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from .schema import (  # noqa: F401  (re-exported: stages and tests import the schema from here)
    METHOD_CONFIGS,
    AttentionRun,
    BiasSweep,
    Compute,
    Dataset,
    FrozenProbe,
    Gate,
    Literature,
    Mnist,
    ParamsError,
    TrainAttention,
    TrainDebiased,
    TrainLazy,
)
from .schema_analysis import (  # noqa: F401
    ATTRIBUTION_METHODS,
    BACKDOOR_METHODS,
    GENERIC_METHODS,
    SAE_VARIANTS,
    Attack,
    Explain,
    Sae,
    TrainBackdoor,
)

SECTIONS: dict[str, type] = {
    "mnist": Mnist,
    "compute": Compute,
    "dataset": Dataset,
    "train_lazy": TrainLazy,
    "train_debiased": TrainDebiased,
    "bias_sweep": BiasSweep,
    "literature": Literature,
    "attack": Attack,
    "explain": Explain,
    "train_backdoor": TrainBackdoor,
    "train_attention": TrainAttention,
    "sae": Sae,
    "analysed_models": dict[str, str],
}


def check_analysed(models: dict) -> None:
    if not models:
        raise ParamsError("analysed_models: empty (list at least one trained model)")
    for k, v in models.items():
        if not k.replace("_", "").isalnum():
            raise ParamsError(f"analysed_models.{k}: names may hold letters, digits and '_'")
        if not v.startswith("data/models/"):
            raise ParamsError(f"analysed_models.{k}: {v!r} is not a checkpoint under data/models/")


def hints(cls: type) -> dict[str, Any]:
    return {k: v for k, v in typing.get_type_hints(cls).items() if typing.get_origin(v) is not typing.ClassVar}


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's SafeLoader, but a key given twice in one mapping is an error (as DVC's parser treats it),
    never a silent last-one-wins."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ParamsError(
                    f"duplicate key {key!r} (line {seen[key] + 1} and line {key_node.start_mark.line + 1})"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _check_bounds(key: str, value: Any, meta: dict) -> Any:
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ParamsError(f"{key}: {value!r} is not one of {list(choices)}")
    for bound, ok, word in (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    ):
        b = meta.get(bound)
        if b is not None and not ok(value, b):
            raise ParamsError(f"{key}: {value!r} is out of range (must be {word} {b})")
    return value


def _check_scalar(key: str, value: Any, tp: Any) -> Any:
    if tp is bool and not isinstance(value, bool):
        raise ParamsError(f"{key}: expected true/false, got {value!r}")
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ParamsError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str and not isinstance(value, str):
        raise ParamsError(f"{key}: expected a string, got {value!r}")
    return value


def _check_value(key: str, value: Any, tp: Any, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        alts = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None and len(alts) < len(typing.get_args(tp)):
            return None
        return _check_value(key, value, alts[0], meta)
    if tp is list or origin is list:
        if not isinstance(value, list):
            raise ParamsError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        return [_check_value(f"{key}[{i}]", v, args[0], meta) for i, v in enumerate(value)] if args else value
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {value!r}")
        registry = meta.get("registry")
        if registry is not None:  # a mapping whose keys pick their own schema (train_debiased.methods)
            unknown = [k for k in value if k not in registry]
            if unknown:
                raise ParamsError(f"{key}.{unknown[0]}: unknown method (known: {', '.join(registry)})")
            return {k: _build(registry[k], v, f"{key}.{k}") for k, v in value.items()}
        args = typing.get_args(tp)
        return {k: _check_value(f"{key}.{k}", v, args[1], meta) for k, v in value.items()} if args else value
    if tp not in (bool, int, float, str):  # pragma: no cover - schema error, not user error
        raise TypeError(f"unsupported schema type {tp} for {key}")
    return _check_bounds(key, _check_scalar(key, value, tp), meta)


def _build(cls: type, raw: Any, prefix: str):
    if not isinstance(raw, dict):
        raise ParamsError(f"{prefix}: expected a mapping, got {raw!r}")
    types_ = hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(f"{prefix}.{unknown[0]}: unknown key (known: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}"
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ParamsError(f"{key}: missing key (every key lives in params.yaml; see its comments)")
            continue
        kwargs[name] = _check_value(key, raw[name], types_[name], dict(f.metadata))
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        check(prefix)
    return obj


def validate(raw: Any) -> dict[str, Any]:
    """Validate a whole params mapping; return {section: typed object}."""
    if not isinstance(raw, dict):
        raise ParamsError("params.yaml: expected a mapping of sections at the top level")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ParamsError(f"{unknown[0]}: unknown section (known: {', '.join(SECTIONS)})")
    missing = [s for s in SECTIONS if s not in raw]
    if missing:
        raise ParamsError(f"{missing[0]}: missing section")
    out = {}
    for name, cls in SECTIONS.items():
        out[name] = _check_value(name, raw[name], cls, {})
    check_analysed(out["analysed_models"])
    for m in out["bias_sweep"].methods:
        if m not in out["train_debiased"].methods:
            raise ParamsError(
                f"bias_sweep.methods: {m!r} is not a train_debiased.methods entry "
                f"(known: {', '.join(out['train_debiased'].methods)})"
            )
    return out


def read_yaml(path: str | Path) -> Any:
    """Parse a params-like YAML file; duplicate keys are errors that name the file and the lines."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: file not found")
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except ParamsError as e:
        raise ParamsError(f"{path}: {e}") from e
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML ({e})") from e


def load(path: str | Path = "params.yaml") -> dict[str, Any]:
    return validate(read_yaml(path))


def load_section(name: str, path: str | Path = "params.yaml"):
    return load(path)[name]


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)
