"""Apply a params preset: ``python -m shortcutlab.preset study`` merges presets/study.yaml into params.yaml.

The merge is a round trip through ruamel.yaml (DVC's own YAML library): every comment, every key the preset
does not touch and the file's layout stay as they were; only the preset's values change. The merged file is
validated before anything is written, and written atomically.

Mappings merge key by key. To keep *only* the preset's entries of a mapping (fewer runs, methods or analysed
models), list its dotted key under the preset's top-level ``replace:`` (``replace`` itself is not a params
key): the entries the preset does not name are deleted, the others merged, so their comments stay.

After the merge, every ``dvc.lock`` (the root's and ``pipelines/*/dvc.lock``) loses the entries of stages that no
longer exist (``prune_locks``): DVC keeps them and rewrites the lock beside a stage's ``dvc.yaml`` after every
stage it runs, so stale entries cost every stage of a run time. ``git checkout params.yaml dvc.lock pipelines``
returns to where you were."""

from __future__ import annotations

import io as _io
import sys
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .io import write_text
from .params import ParamsError, read_yaml, validate


def _yaml() -> YAML:
    y = YAML()  # round-trip mode: comments and key order are kept
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a line the preset does not touch
    y.indent(mapping=2, sequence=4, offset=2)  # params.yaml's own layout (the palette's nested list)
    return y


def _flow(v):
    """A preset's list (or flat mapping) written inline, like params.yaml writes them."""
    if isinstance(v, list) and all(not isinstance(e, (dict, list)) for e in v):
        out = CommentedSeq(v)
    elif isinstance(v, dict) and all(not isinstance(e, dict) for e in v.values()):
        out = CommentedMap({k: _flow(e) for k, e in v.items()})
    else:
        return v
    out.fa.set_flow_style()
    return out


def merge(base, over: dict, replace: frozenset[str] = frozenset(), prefix: str = ""):
    """Merge ``over`` into ``base`` in place (mappings recursively; anything else replaced). A mapping whose
    dotted key is in ``replace`` first loses every entry ``over`` does not name."""
    if prefix.rstrip(".") in replace:
        for k in [k for k in base if k not in over]:
            del base[k]
    for k, v in over.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v, replace, key + ".")
        elif isinstance(base.get(k), list) and isinstance(v, list) and base[k] == v:
            continue  # unchanged: keep its layout and comments
        else:
            base[k] = _flow(v)
    return base


def apply(name: str, params: str | Path = "params.yaml", presets: str | Path = "presets") -> dict:
    path = Path(presets) / f"{name}.yaml"
    if not path.exists():
        raise ParamsError(f"{path}: no such preset (known: {', '.join(p.stem for p in Path(presets).glob('*.yaml'))})")
    over = dict(read_yaml(path) or {})
    replace = over.pop("replace", [])
    if not isinstance(replace, list) or not all(isinstance(r, str) for r in replace):
        raise ParamsError(f"{path}: replace: expected a list of dotted params keys")
    y = _yaml()
    doc = y.load(Path(params).read_text())
    if not isinstance(doc, CommentedMap):
        raise ParamsError(f"{params}: expected a mapping of sections")
    merge(doc, over, frozenset(replace))
    buf = _io.StringIO()
    y.dump(doc, buf)
    text = buf.getvalue()
    validate(YAML(typ="safe").load(text))
    write_text(params, text)
    return doc


def prune_lock(stages: set[str], lock: str | Path = "dvc.lock") -> list[str]:
    """Drop the ``dvc.lock`` entries of stages not in ``stages`` (names as ``dvc stage list`` prints them),
    keeping every other entry as DVC wrote it (DVC's own round-trip reader and writer), written atomically;
    returns the dropped names."""
    from dvc.utils.serialize import dumps_yaml, parse_yaml_for_update

    lock = Path(lock)
    if not lock.exists():
        return []
    doc = parse_yaml_for_update(lock.read_text(), str(lock))
    entries = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise ParamsError(f"{lock}: expected a DVC lock file with a 'stages' mapping")
    stale = [k for k in entries if k not in stages]
    for k in stale:
        del entries[k]
    if stale:
        write_text(lock, dumps_yaml(doc))
    return stale


def dvc_files(root: str | Path = ".") -> list[Path]:
    """The pipeline's ``dvc.yaml`` files: the root's (the spine: params check, data, lazy model, the literature
    protocol, evaluate) and one per stage family, ``pipelines/<family>/dvc.yaml`` (stages run in the root)."""
    root = Path(root)
    return [root / "dvc.yaml", *sorted(root.glob("pipelines/*/dvc.yaml"))]


def lock_files(root: str | Path = ".") -> list[Path]:
    """The ``dvc.lock`` beside each of :func:`dvc_files` that exists."""
    return [p.with_suffix(".lock") for p in dvc_files(root) if p.with_suffix(".lock").exists()]


def pipeline_stages(root: str | Path = ".") -> dict[Path, set[str]]:
    """Each ``dvc.yaml`` of the pipeline (the root's and ``pipelines/*/dvc.yaml``, absolute paths) -> the names of
    the stages it defines with the current ``params.yaml`` (foreach expanded; a file whose lists are empty: none)."""
    from dvc.repo import Repo

    root = Path(root).resolve()
    files: dict[Path, set[str]] = {p: set() for p in dvc_files(root)}
    with Repo(str(root)) as repo:
        for s in repo.index.stages:
            files.setdefault(Path(s.dvcfile.path).resolve(), set()).add(s.name)
    return files


def prune_locks(root: str | Path = ".") -> list[str]:
    """:func:`prune_lock` on the ``dvc.lock`` beside every ``dvc.yaml``; the dropped stages as DVC addresses them."""
    root = Path(root).resolve()
    dropped = []
    for spec, names in pipeline_stages(root).items():
        prefix = "" if spec.parent == root else f"{spec.relative_to(root)}:"
        dropped += [prefix + n for n in prune_lock(names, spec.with_suffix(".lock"))]
    return dropped


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m shortcutlab.preset NAME")
    try:
        apply(sys.argv[1])
        dropped = prune_locks()
    except ParamsError as e:
        sys.exit(f"preset: {e}")
    if dropped:
        print(f"dvc.lock files: dropped the entries of {len(dropped)} stages this preset does not run")
