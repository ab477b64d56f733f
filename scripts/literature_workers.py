"""Run the `literature` preset's pending lff-train stages several at a time, one CPU thread each.

    python scripts/literature_workers.py [--workers N] [--dry-run]

The protocol's MLP is too small to keep two threads busy: on the 2-core EPYC, two stages at once with one
thread each finished 1.4-1.8x more stages per hour than `dvc repro` running them one at a time with two
threads (session 14, README "The LfF Colored-MNIST protocol"); two stages at once with two threads each are
2-4x slower instead. `dvc repro` holds the repository's lock while it runs, so each worker runs a stage's own
command and the finished stage is recorded with `dvc commit` (one at a time), which writes the same dvc.lock
entry `dvc repro` would: the workers are scripts/parallel_repro.py's, which does the same for any stage but
asks for `compute.threads: 1`. This one does not, because the protocol's stages compute the same bytes at one
thread as at two, ReBias aside (below). Run it in a repository with the preset on (`python -m shortcutlab.preset
literature`); it first runs the protocol's datasets with `dvc repro`, then the lff-train stages that
`dvc status` reports as changed, longest first.

Thread count and bytes: vanilla, LfF, JTT and consistency give the same numbers with one thread and with two;
ReBias does not (its accuracies move in the fourth digit), so a ReBias stage reproduces byte for byte only
with the thread count it ran with.
"""

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import parallel_repro as pr  # noqa: E402  (a sibling script: the scheduler, workers and options it shares)

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
    """The changed lff-train stages, longest first (ties: the order given)."""
    stages = [s for s in changed if s.startswith(PREFIX)]
    return sorted(stages, key=lambda s: -COST.get(parse(s)[1], 2.0))


def dvc(*args: str) -> str:
    done = subprocess.run(["dvc", *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"dvc {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr.strip()}")
    return done.stdout


def main() -> None:
    ap = pr.worker_args(__doc__.split("\n\n")[0])
    args = ap.parse_args()
    pr.check_args(args)
    if not args.dry_run:
        dvc("repro", "--glob", "lff-dataset@*")
    _, changed, _, cmds = pr.load_pipeline()
    stages = plan(sorted(changed))
    print(f"{len(stages)} lff-train stages to run, {args.workers} at a time: {' '.join(stages) or '-'}", flush=True)
    if args.dry_run or not stages:
        return
    failed = pr.run_all(stages, {}, cmds, set(stages), args.workers, Path(".dvc/tmp/literature_workers"))
    if failed:
        sys.exit(f"{len(failed)} stage(s) failed: {' '.join(failed)}")


if __name__ == "__main__":
    main()
