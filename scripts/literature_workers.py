"""Run the `literature` preset's pending lff-train stages several at a time, one CPU thread each.

    python scripts/literature_workers.py [--workers N] [--dry-run]

The protocol's MLP is too small to keep two threads busy: on the 2-core EPYC, two stages at once with one
thread each finished 1.4-1.8x more stages per hour than `dvc repro` running them one at a time with two
threads (session 14, README "The LfF Colored-MNIST protocol"); two stages at once with two threads each are
2-4x slower instead. `dvc repro` holds the repository's lock while it runs, so each worker runs a stage's own
command and the finished stage is recorded with `dvc commit` (one at a time), which writes the same dvc.lock
entry `dvc repro` would. Run it in a repository with the preset on (`python -m shortcutlab.preset
literature`); it first runs the protocol's datasets with `dvc repro`, then the lff-train stages that
`dvc status` reports as changed, longest first.

Thread count and bytes: vanilla, LfF, JTT and consistency give the same numbers with one thread and with two;
ReBias does not (its accuracies move in the fourth digit), so a ReBias stage reproduces byte for byte only
with the thread count it ran with.
"""

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

# Relative cost per stage, measured alone (README): ReBias ≈ 5 s per epoch, consistency ≈ 3, LfF/JTT ≈ 1.6-2,
# vanilla ≈ 0.75. Longest first keeps the last worker from starting a long stage alone.
COST = {"rebias": 5.0, "consistency": 3.0, "jtt": 2.0, "lff": 1.8, "vanilla": 1.0}
PREFIX = "lff-train@"


def parse(stage: str) -> tuple[str, str, str]:
    """'lff-train@0.995-lff-clean' -> ('0.995', 'lff', 'clean'): the arguments of stages/literature.py."""
    if not stage.startswith(PREFIX) or stage.count("-") < 3:
        raise ValueError(f"not an lff-train stage name: {stage!r}")
    aligned, rest = stage[len(PREFIX) :].split("-", 1)
    method, scaling = rest.rsplit("-", 1)
    return aligned, method, scaling


def plan(changed: list[str]) -> list[str]:
    """The changed lff-train stages, longest first (ties: the order DVC listed them)."""
    stages = [s for s in changed if s.startswith(PREFIX)]
    return sorted(stages, key=lambda s: -COST.get(parse(s)[1], 2.0))


def dvc(*args: str) -> str:
    done = subprocess.run(["dvc", *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"dvc {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr.strip()}")
    return done.stdout


def worker(todo: queue.Queue, lock: threading.Lock, logs: Path, failed: list[str]) -> None:
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    while True:
        try:
            stage = todo.get_nowait()
        except queue.Empty:
            return
        t0 = time.perf_counter()
        with open(logs / f"{stage}.log", "w") as log:
            rc = subprocess.run(
                [sys.executable, "stages/literature.py", *parse(stage)], stdout=log, stderr=log, env=env
            ).returncode
        if rc == 0:
            with lock:
                rc = subprocess.run(["dvc", "commit", "-f", "-q", stage]).returncode
        if rc:
            failed.append(stage)
        state = "done" if rc == 0 else f"FAILED (exit {rc}; log: {logs / (stage + '.log')})"
        print(f"{stage}: {state} in {time.perf_counter() - t0:.0f}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="stages at once (default: cores)")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    args = ap.parse_args()
    if args.workers < 1:
        sys.exit(f"--workers must be at least 1, got {args.workers}")
    if not Path("dvc.yaml").exists():
        sys.exit("run it from the repository root (no dvc.yaml here)")
    if not args.dry_run:
        dvc("repro", "--glob", "lff-dataset@*")
    stages = plan(list(json.loads(dvc("status", "--json") or "{}")))
    print(f"{len(stages)} lff-train stages to run, {args.workers} at a time: {' '.join(stages) or '-'}", flush=True)
    if args.dry_run or not stages:
        return
    todo: queue.Queue = queue.Queue()
    for s in stages:
        todo.put(s)
    logs = Path(".dvc/tmp/literature_workers")
    logs.mkdir(parents=True, exist_ok=True)
    lock, failed = threading.Lock(), []
    threads = [threading.Thread(target=worker, args=(todo, lock, logs, failed)) for _ in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        sys.exit(f"{len(failed)} stage(s) failed: {' '.join(failed)}")


if __name__ == "__main__":
    main()
