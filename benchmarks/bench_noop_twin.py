"""Benchmark: how long does DVC itself take for a no-op `dvc repro` of a pipeline shaped like ours?

    python benchmarks/bench_noop_twin.py [--repeat 3] [--limit N]   (in a repository with its dvc.lock files)

Builds, in a temporary directory, a "twin" of this repository's pipeline: the same stages, each with the same
dependency and output paths and the same `params.yaml` keys as its `dvc.lock` entry records, but every
dependency a one-byte file and every command `mkdir`/`touch`. It runs the twin once, then times its no-op
`dvc repro` (a fresh process each time, median) against variants that drop one part of the shape:

- `no params`: the stages declare no params keys;
- `no file deps`: the stages declare no dependency files (params and outputs kept);
- `half the stages`: every other stage (their dependencies kept as files).

The twin's time is what DVC costs for this shape whatever the stages compute; the half-size twin gives a
per-stage cost and so the stage count at which a pipeline of this shape would meet a 2 s no-op. (The twin is
one `dvc.yaml`, not one per stage family; a no-op reads every file once either way.) ``--limit N`` twins only
the first N stages of the locks (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_noop.py lives beside this file
from bench_noop import noop_seconds  # noqa: E402

from shortcutlab.preset import lock_files  # noqa: E402


def lock_shape(root: Path) -> dict[str, dict]:
    """Every stage's dependency paths, output paths and params keys, as its dvc.lock entry records them."""
    stages = {}
    for lock in lock_files(root):
        for name, entry in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).items():
            stages[name.replace("@", "_")] = {
                "deps": [d["path"] for d in entry.get("deps", [])],
                "outs": [o["path"] for o in entry.get("outs", [])],
                "params": sorted({k for keys in entry.get("params", {}).values() for k in keys}),
            }
    if not stages:
        sys.exit(f"no dvc.lock entries under {root}: run the pipeline (or a preset) first")
    return stages


def touch_cmd(outs: list[str], paths: set[str], dirs: set[str]) -> str:
    """A shell command that creates each output: a file, or a directory with a file and every path of the
    pipeline that lies under it."""
    files = [f"{o}/f" if o in dirs else o for o in outs]
    inner = [q for o in outs if o in dirs for q in sorted(paths) if q.startswith(o + "/")]
    files += [f"{q}/f" if q in dirs else q for q in inner]
    parents = sorted({str(Path(f).parent) for f in files})
    return f"mkdir -p {' '.join(parents)} && touch {' '.join(files)}" if files else "true"


def write_twin(dest: Path, shape: dict[str, dict], params_file: Path, params: bool = True, deps: bool = True):
    """A DVC repository in ``dest`` with the stages of ``shape``: dvc.yaml, params.yaml and every input file."""
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["dvc", "config", "core.analytics", "false"], cwd=dest, check=True)
    shutil.copy(params_file, dest / "params.yaml")
    outs = {o for s in shape.values() for o in s["outs"]}
    paths = outs | {d for s in shape.values() for d in s["deps"]}
    dirs = {p for p in paths if any(q.startswith(p + "/") for q in paths)}  # a path others live under
    spec = {}
    for name, s in shape.items():
        stage = {"cmd": touch_cmd(s["outs"], paths, dirs)}
        if deps and s["deps"]:
            stage["deps"] = s["deps"]
        if params and s["params"]:
            stage["params"] = s["params"]
        if s["outs"]:
            stage["outs"] = s["outs"]
        spec[name] = stage
        for d in s["deps"]:
            if d not in outs and not any(d.startswith(o + "/") for o in outs):
                p = dest / d
                (p / "f" if d in dirs else p).parent.mkdir(parents=True, exist_ok=True)
                (p / "f" if d in dirs else p).write_text("x")
    (dest / "dvc.yaml").write_text(yaml.safe_dump({"stages": spec}, sort_keys=False))
    done = subprocess.run(["dvc", "repro", "-q"], cwd=dest, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the twin pipeline failed to build:\n{done.stdout}\n{done.stderr}")


def measure(shape: dict[str, dict], params_file: Path, repeat: int, **kw) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        write_twin(Path(tmp), shape, params_file, **kw)
        return statistics.median(noop_seconds(tmp) for _ in range(repeat))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--root", type=Path, default=Path("."))
    ap.add_argument("--limit", type=int, default=0, help="twin only the first N stages (0: all)")
    args = ap.parse_args(argv)
    shape = lock_shape(args.root)
    if args.limit:
        shape = dict(list(shape.items())[: args.limit])
    params_file = args.root / "params.yaml"
    half = dict(list(shape.items())[::2])
    out = {
        "stages": len(shape),
        "file deps": sum(len(s["deps"]) for s in shape.values()),
        "outs": sum(len(s["outs"]) for s in shape.values()),
        "params keys": sum(len(s["params"]) for s in shape.values()),
        "twin (s, median)": measure(shape, params_file, args.repeat),
        "twin, no params (s, median)": measure(shape, params_file, args.repeat, params=False),
        "twin, no file deps (s, median)": measure(shape, params_file, args.repeat, deps=False),
        "twin, half the stages (s, median)": measure(half, params_file, args.repeat),
    }
    per_stage = (out["twin (s, median)"] - out["twin, half the stages (s, median)"]) / (len(shape) - len(half))
    base = out["twin (s, median)"] - per_stage * len(shape)
    out["per stage (s)"] = per_stage
    out["fixed (s)"] = base
    out["stages of this shape within 2 s"] = int((2.0 - base) / per_stage) if per_stage > 0 else None
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
