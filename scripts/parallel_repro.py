"""Run the pipeline's changed stages several at a time, one CPU thread each, and record them as `dvc repro` does.

    python scripts/parallel_repro.py [--workers N] [--dry-run] [STAGE-PATTERN ...]

Most of the study's models are too small to keep two cores busy (benchmarks/README.md: 12-28% of the bf16
peak), so two stages at once with one thread each can finish sooner than `dvc repro` running them one at a
time. `dvc repro` holds the repository's lock while it runs, so each worker runs a stage's own command (after
removing its old outputs, as `dvc repro` does) and the finished stage is recorded with `dvc commit`, one at a
time; a stage starts only when every stage it depends on is recorded.

Bytes: the thread count changes the order of floating-point sums, and with it every trained model (session 15:
40 of `quick`'s 45 stages gave other bytes at one thread than at two). So this runner refuses to run unless
`params.yaml` sets `compute.threads: 1`: then each stage computes exactly what `dvc repro` computes with the
same params, and `dvc status` afterwards reports the pipeline up to date.

What it runs: the stages `dvc status` reports changed, and every stage downstream of them whose `dvc status` says
changed once its upstream stages are recorded (as `dvc repro` decides). It ignores DVC's run-cache.
Frozen stages are never run. Given stage names or shell patterns (`'bias-sweep@*'`), it runs only the changed
stages that match, like `dvc repro -s`. Logs: .dvc/tmp/parallel_repro/<stage>.log.
"""

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml


def check_threads(params_path: str = "params.yaml") -> None:
    """Exit with a message naming the key unless params.yaml sets compute.threads: 1."""
    try:
        threads = yaml.safe_load(Path(params_path).read_text())["compute"]["threads"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as e:
        sys.exit(f"{params_path}: cannot read compute.threads ({e.__class__.__name__}: {e})")
    if threads != 1:
        sys.exit(
            f"{params_path}: compute.threads is {threads!r}; this runner needs compute.threads: 1, so that each "
            "stage computes what `dvc repro` computes (the thread count changes the bytes of every trained model)"
        )


def plan(
    upstream: dict[str, set[str]],
    changed: set[str],
    frozen: frozenset[str] = frozenset(),
    only: list[str] | None = None,
) -> list[str]:
    """The stages that may run: ``changed`` and everything downstream of them (the worker runs a downstream
    stage only if `dvc status` says it changed when its turn comes), minus frozen stages, ordered by the
    longest chain of stages that waits on each (critical path first), then by name. With ``only`` (shell
    patterns), just the changed stages that match one, as `dvc repro -s` would run them.

    ``upstream`` maps every stage to the stages it depends on."""
    downstream: dict[str, set[str]] = {s: set() for s in upstream}
    for s, ups in upstream.items():
        for u in ups:
            downstream.setdefault(u, set()).add(s)
    todo, stack = set(), [s for s in changed if s not in frozen]
    if only is not None:
        todo, stack = {s for s in stack if matches(s, only)}, []
    while stack:
        s = stack.pop()
        if s not in todo:
            todo.add(s)
            stack.extend(d for d in downstream.get(s, ()) if d not in frozen)
    depth: dict[str, int] = {}

    def chain(s: str) -> int:
        if s not in depth:
            depth[s] = 1 + max((chain(d) for d in downstream.get(s, ()) if d in todo), default=0)
        return depth[s]

    return sorted(todo, key=lambda s: (-chain(s), s))


def matches(stage: str, patterns: list[str]) -> bool:
    """Whether a stage, as DVC addresses it (``pipelines/<family>/dvc.yaml:<name>`` outside the root dvc.yaml),
    matches one of the shell patterns, by that address or by its bare name."""
    name = stage.rpartition(":")[2]
    return any(fnmatch.fnmatchcase(stage, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


class Scheduler:
    """Hands out stages whose upstream stages (among those to run) are all recorded; stops on a failure."""

    def __init__(self, order: list[str], upstream: dict[str, set[str]]):
        self.order, self.cond = list(order), threading.Condition()
        self.waits = {s: set(upstream.get(s, ())) & set(order) for s in order}
        self.running: set[str] = set()
        self.failed: list[str] = []

    def take(self) -> str | None:
        with self.cond:
            while True:
                if self.failed or not self.order:
                    return None
                ready = next((s for s in self.order if not self.waits[s]), None)
                if ready is not None:
                    self.order.remove(ready)
                    self.running.add(ready)
                    return ready
                self.cond.wait()

    def finish(self, stage: str, ok: bool) -> None:
        with self.cond:
            self.running.discard(stage)
            if ok:
                for waits in self.waits.values():
                    waits.discard(stage)
            else:
                self.failed.append(stage)
            self.cond.notify_all()


def remove_outs(paths: list[str]) -> None:
    for p in map(Path, paths):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def worker(sched: Scheduler, stages: dict, changed: set[str], commit: threading.Lock, logs: Path) -> None:
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    while (name := sched.take()) is not None:
        cmd, outs, wdir = stages[name]
        t0 = time.perf_counter()
        if name not in changed:  # queued only as downstream of a changed stage: now, after it, has it changed?
            with commit:
                clean = subprocess.run(["dvc", "status", "-q", name]).returncode == 0
            if clean:
                print(f"{name}: up to date, not run", flush=True)
                sched.finish(name, True)
                continue
        remove_outs(outs)
        log = logs / f"{name.replace('/', '_')}.log"
        with open(log, "w") as f:
            rc = subprocess.run(cmd, shell=True, cwd=wdir, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
        if rc == 0:
            with commit:
                rc = subprocess.run(["dvc", "commit", "-f", "-q", name]).returncode
        state = "done" if rc == 0 else f"FAILED (exit {rc}; log: {log})"
        print(f"{name}: {state} in {time.perf_counter() - t0:.0f}s", flush=True)
        sched.finish(name, rc == 0)


def load_pipeline() -> tuple[dict[str, set[str]], set[str], frozenset[str], dict]:
    """(upstream map, changed stages, frozen stages, name -> (cmd, non-persistent out paths, working directory))
    from DVC, over every dvc.yaml of the repository (names as DVC addresses them)."""
    from dvc.repo import Repo

    with Repo(".") as repo:
        graph = repo.index.graph  # an edge stage -> the stage producing one of its deps
        stages = [s for s in graph.nodes if getattr(s, "cmd", None)]
        upstream = {s.addressing: {u.addressing for u in graph.successors(s) if u in stages} for s in stages}
        frozen = frozenset(s.addressing for s in stages if s.frozen)
        cmds = {s.addressing: (s.cmd, [o.fs_path for o in s.outs if not o.persist], s.wdir) for s in stages}
        changed = set(repo.status()) & set(upstream)
    return upstream, changed, frozen, cmds


def worker_args(description: str) -> argparse.ArgumentParser:
    """The options every stage runner here takes (this one and literature_workers.py)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="stages at once (default: cores)")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    return ap


def check_args(args: argparse.Namespace) -> None:
    if args.workers < 1:
        sys.exit(f"--workers must be at least 1, got {args.workers}")
    if not Path("dvc.yaml").exists():
        sys.exit("run it from the repository root (no dvc.yaml here)")


def run_all(order: list[str], upstream: dict, cmds: dict, changed: set[str], workers: int, logs: Path) -> list[str]:
    """Run ``order`` with ``workers`` threads (see :func:`worker`); the stages that failed."""
    logs.mkdir(parents=True, exist_ok=True)
    sched = Scheduler(order, upstream)
    work = (sched, cmds, changed, threading.Lock(), logs)
    threads = [threading.Thread(target=worker, args=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sched.failed


def main() -> None:
    ap = worker_args(__doc__.split("\n\n")[0])
    ap.add_argument("stages", nargs="*", help="only the changed stages matching these names or shell patterns")
    args = ap.parse_args()
    check_args(args)
    check_threads()
    upstream, changed, frozen, cmds = load_pipeline()
    unknown = [p for p in args.stages if not any(matches(s, [p]) for s in upstream)]
    if unknown:
        sys.exit(f"no stage of the pipeline (any dvc.yaml) matches {', '.join(map(repr, unknown))}")
    order = plan(upstream, changed, frozen, args.stages or None)
    print(f"{len(order)} stage(s) to run, {args.workers} at a time: {' '.join(order) or '-'}", flush=True)
    if args.dry_run or not order:
        return
    failed = run_all(order, upstream, cmds, changed, args.workers, Path(".dvc/tmp/parallel_repro"))
    if failed:
        sys.exit(f"{len(failed)} stage(s) failed: {' '.join(failed)}; the rest were not started")


if __name__ == "__main__":
    main()
