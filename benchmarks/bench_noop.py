"""Benchmark: where a no-op `dvc repro` (nothing to run) spends its time, and what is DVC's own.

    python benchmarks/bench_noop.py [--repeat 5]   (in an up-to-date repository: `dvc status` clean)

Runs `dvc repro` several times as a new user would (a fresh process each time) and reports the median wall
time. Then it runs the same no-op inside one Python process with parts of DVC's per-stage work replaced,
one variant at a time, to measure what each part costs (diagnosis only; the pipeline never runs patched):

- `params-parsed-once`: DVC re-reads and re-parses params.yaml for every stage that declares params (one
  parse per stage, ruamel.yaml); the variant parses each params file once.
- `+ plain-key-lookup`: DVC looks every declared key up with `dpath.get` (a glob matcher); the variant
  walks the dict.
- `+ no-rwlock`: DVC takes and releases a JSON-file read/write lock on every dependency and output of every
  stage; the variant skips it (unsafe with concurrent DVC processes: diagnosis only).

What is left after all three is DVC's start-up, reading dvc.yaml and dvc.lock, building the stage graph and
hashing-by-metadata every dependency and output (one state-database lookup each).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = ("base", "params-parsed-once", "+ plain-key-lookup", "+ no-rwlock")

# Run in a fresh interpreter per measurement: DVC caches nothing between processes, neither does a user.
PATCHED = r"""
import sys, time
t0 = time.perf_counter()
level = int(sys.argv[1])
import dvc.dependency.param as param
if level >= 1:
    _load, _seen = param.load_path, {}
    def load_path(path, fs, **kw):
        if path not in _seen:
            _seen[path] = _load(path, fs, **kw)
        return _seen[path]
    param.load_path = load_path
if level >= 2:
    class _Lookup:
        @staticmethod
        def get(obj, glob, separator="."):
            for key in glob.split(separator):
                obj = obj[key]
            return obj
    param.dpath = _Lookup
if level >= 3:
    import contextlib
    import dvc.rwlock
    dvc.rwlock.rwlock = lambda *a, **k: contextlib.nullcontext()
from dvc.cli import main
rc = main(["repro"])
print(time.perf_counter() - t0)
sys.exit(rc)
"""


def noop_seconds(cwd: str | Path | None = None) -> float:
    """Wall seconds of one `dvc repro` in ``cwd`` (default: here), which must find nothing to run."""
    t0 = time.perf_counter()
    done = subprocess.run(["dvc", "repro"], cwd=cwd, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if done.returncode or "up to date" not in done.stdout:
        where = cwd or "."
        sys.exit(f"`dvc repro` was not a no-op in {where} (exit {done.returncode}): run it once first\n{done.stdout}")
    return secs


def patched_seconds(level: int) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PATCHED, str(level)], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"patched no-op (variant {VARIANTS[level]}) failed:\n{done.stderr}")
    return time.perf_counter() - t0


def shape() -> dict:
    from shortcutlab.preset import lock_files

    locks = lock_files()
    status = subprocess.run(["dvc", "stage", "list", "--all", "--name-only"], capture_output=True, text=True).stdout
    return {
        "stages": len(status.split()),
        "dvc.lock files": len(locks),
        "dvc.lock lines": sum(len(p.read_text().splitlines()) for p in locks),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if not Path("dvc.yaml").exists():
        sys.exit("run it from the repository root (no dvc.yaml here)")
    out = shape()
    out["dvc repro (s, median)"] = statistics.median(noop_seconds() for _ in range(args.repeat))
    for level, name in enumerate(VARIANTS):
        out[f"in one process, {name} (s, median)"] = statistics.median(
            patched_seconds(level) for _ in range(args.repeat)
        )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
