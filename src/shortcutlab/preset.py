"""Apply a params preset: ``python -m shortcutlab.preset study`` merges presets/study.yaml into params.yaml
(validated first; comments in params.yaml are not preserved)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from .io import write_text
from .params import ParamsError, validate


def merge(base: dict, over: dict) -> dict:
    for k, v in over.items():
        base[k] = merge(base.get(k, {}), v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return base


def apply(name: str, params: str | Path = "params.yaml", presets: str | Path = "presets") -> dict:
    path = Path(presets) / f"{name}.yaml"
    if not path.exists():
        raise ParamsError(f"{path}: no such preset")
    merged = merge(yaml.safe_load(Path(params).read_text()), yaml.safe_load(path.read_text()) or {})
    validate(merged)
    write_text(params, yaml.safe_dump(merged, sort_keys=False, default_flow_style=None))
    return merged


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m shortcutlab.preset NAME")
    try:
        apply(sys.argv[1])
    except ParamsError as e:
        sys.exit(f"preset: {e}")
