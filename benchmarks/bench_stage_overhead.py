"""Where a stage's fixed cost goes: run in the repository root, alone on the machine.

    python benchmarks/bench_stage_overhead.py --repeat 5

Prints medians over ``--repeat`` runs of
- the do-nothing stage's own process (``python stages/check_params.py``: interpreter, imports, params validation),
- the same stage run by DVC (``dvc repro -s -f check-params``: DVC's start-up, its status checks and the rewrite of
  the root ``dvc.lock`` after the stage), the issue-17 figure (target ≤ 1.5 s),
- DVC's round trip of a ``dvc.lock`` alone (ruamel.yaml round-trip load + dump, what DVC does to the lock beside
  a stage's ``dvc.yaml`` after every stage): the root's and the largest family's (``pipelines/*/dvc.lock``),
- one parse of ``params.yaml`` (DVC parses it once per stage with params to check them),
- ``dvc repro`` with nothing to run (only meaningful where every stage is up to date: otherwise it says so).
check-params rewrites ``data/params.ok`` with the same bytes; nothing else is written.
"""

import argparse
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def median_of(fn, repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def lock_round_trip(lock: str) -> float:
    from dvc.utils.serialize import dumps_yaml, parse_yaml_for_update

    text = Path(lock).read_text()
    t0 = time.perf_counter()
    dumps_yaml(parse_yaml_for_update(text, lock))
    return time.perf_counter() - t0


def params_parse(path: str) -> float:
    from ruamel.yaml import YAML

    text = Path(path).read_text()
    t0 = time.perf_counter()
    YAML(typ="safe").load(io.StringIO(text))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    dvc = str(Path(sys.executable).with_name("dvc"))
    stages = subprocess.run([dvc, "stage", "list", "--all", "--name-only"], capture_output=True, text=True, check=True)
    n_stages = len(stages.stdout.split())
    from shortcutlab.preset import lock_files

    locks = {p: len(p.read_text().splitlines()) for p in lock_files()}
    sizes = ", ".join(f"{p} {n}" for p, n in locks.items())
    print(f"{n_stages} stages; lock lines: {sizes or 'no lock'}; medians of {a.repeat} runs:")
    own = median_of(lambda: wall([sys.executable, "stages/check_params.py"]), a.repeat)
    print(f"  the do-nothing stage's own process       {own:6.2f} s")
    staged = median_of(lambda: wall([dvc, "repro", "-q", "-s", "-f", "check-params"]), a.repeat)
    print(f"  dvc repro -s -f check-params             {staged:6.2f} s   (issue 17 target: <= 1.5 s)")
    for lock in dict.fromkeys([p for p in locks if p.parent == Path(".")] + sorted(locks, key=locks.get)[-1:]):
        rt = median_of(lambda lock=lock: lock_round_trip(str(lock)), a.repeat)
        print(f"  {str(lock) + ' round trip (load + dump)':40s} {rt:6.2f} s   (after every stage of its dvc.yaml)")
    pp = median_of(lambda: params_parse("params.yaml"), a.repeat)
    print(f"  one parse of params.yaml                 {pp:6.3f} s   (x {n_stages} stages in a no-op repro)")
    dry = subprocess.run([dvc, "status", "-q"], capture_output=True)
    if dry.returncode == 0:
        noop = median_of(lambda: wall([dvc, "repro", "-q"]), a.repeat)
        print(f"  dvc repro with nothing to run            {noop:6.2f} s   (issue 17 target: <= 2 s)")
    else:
        print("  dvc repro with nothing to run: not measured, some stages are not up to date (`dvc status`)")


if __name__ == "__main__":
    main()
