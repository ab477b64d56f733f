"""Apply a params preset: ``python -m shortcutlab.preset study`` merges presets/study.yaml into params.yaml.

The merge is a round trip through ruamel.yaml (DVC's own YAML library): every comment, every key the preset
does not touch and the file's layout stay as they were; only the preset's values change. The merged file is
validated before anything is written, and written atomically."""

from __future__ import annotations

import io as _io
import sys
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from .io import write_text
from .params import ParamsError, read_yaml, validate


def _yaml() -> YAML:
    y = YAML()  # round-trip mode: comments and key order are kept
    y.preserve_quotes = True
    y.width = 120
    return y


def merge(base, over: dict):
    """Merge ``over`` into ``base`` in place (mappings recursively; anything else replaced)."""
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def apply(name: str, params: str | Path = "params.yaml", presets: str | Path = "presets") -> dict:
    path = Path(presets) / f"{name}.yaml"
    if not path.exists():
        raise ParamsError(f"{path}: no such preset (known: {', '.join(p.stem for p in Path(presets).glob('*.yaml'))})")
    over = read_yaml(path) or {}
    y = _yaml()
    doc = y.load(Path(params).read_text())
    if not isinstance(doc, CommentedMap):
        raise ParamsError(f"{params}: expected a mapping of sections")
    merge(doc, over)
    buf = _io.StringIO()
    y.dump(doc, buf)
    text = buf.getvalue()
    validate(YAML(typ="safe").load(text))
    write_text(params, text)
    return doc


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m shortcutlab.preset NAME")
    try:
        apply(sys.argv[1])
    except ParamsError as e:
        sys.exit(f"preset: {e}")
