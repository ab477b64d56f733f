"""Benchmark: one process with every core's thread against one single-thread process per core, per model family.

`scripts/parallel_repro.py` runs two stages at once with one thread each (`compute.threads: 1`); whether that
pays depends on the model. Here each family of ``bench_models.FAMILIES`` trains for ``--steps`` steps (bf16 where
the CPU computes it natively, the training step of ``bench_models.py``) in fresh processes:

- ``together``: one process, torch's default thread count (one per core), alone;
- ``apart``: ``--procs`` processes at once (default: the core count), one thread each, started together.

It prints images/s of both and the ratio of the summed ``apart`` rate to ``together``'s (> 1: parallel stages
with one thread each finish sooner). Only bytes-neutral facts are measured: a model trained with one thread
differs in its last bits from one trained with two (README: "Reproducibility and honesty rules"). Run it alone.

    python benchmarks/bench_threads.py [--steps 40] [--batch 256] [--families lazy,ViT] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker(family: str, threads: int, steps: int, batch: int) -> None:
    """Train ``family`` for ``steps`` steps with ``threads`` threads and print images/s (one JSON line)."""
    import torch
    from bench_models import FAMILIES
    from roofline import train_step

    from shortcutlab.models import build
    from shortcutlab.params import Compute
    from shortcutlab.runtime import resolve

    arch, kw = FAMILIES[family]
    torch.manual_seed(0)
    rt = resolve(Compute(device="cpu", precision="auto", threads=threads))
    step = train_step(build(arch, **kw), rt, batch)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    print(json.dumps({"images_per_s": batch * steps / (time.perf_counter() - t0)}), flush=True)


def spawn(family: str, threads: int, steps: int, batch: int) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--worker", family, str(threads), str(steps), str(batch)]
    env = os.environ | {"SHORTCUTLAB_QUIET": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=HERE)


def rate(proc: subprocess.Popen) -> float:
    out, _ = proc.communicate()
    if proc.returncode:
        sys.exit(f"a worker failed (exit {proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])["images_per_s"]


def measure(family: str, procs: int, steps: int, batch: int) -> dict:
    together = rate(spawn(family, 0, steps, batch))
    apart = [rate(p) for p in [spawn(family, 1, steps, batch) for _ in range(procs)]]
    return {
        "family": family,
        "together_images_per_s": together,
        "apart_images_per_s": apart,
        "apart_over_together": sum(apart) / together,
    }


def main() -> None:
    from bench_models import FAMILIES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 1, help="single-thread processes at once")
    ap.add_argument("--families", help="comma-separated beginnings of bench_models.py's family names (default: all)")
    ap.add_argument("--json")
    a = ap.parse_args()
    wanted = [f.strip() for f in (a.families or "").split(",") if f.strip()]
    unknown = [w for w in wanted if not any(name.startswith(w) for name in FAMILIES)]
    if unknown:
        sys.exit(f"--families: unknown {unknown}; known: {list(FAMILIES)}")
    names = [name for name in FAMILIES if not wanted or any(name.startswith(w) for w in wanted)]
    rows = []
    for name in names:
        row = measure(name, a.procs, a.steps, a.batch)
        rows.append(row)
        apart = " + ".join(f"{r:,.0f}" for r in row["apart_images_per_s"])
        print(
            f"{name:42s} together {row['together_images_per_s']:9,.0f} img/s | apart {apart} img/s"
            f" | apart/together {row['apart_over_together']:.2f}x",
            flush=True,
        )
    if a.json:
        Path(a.json).write_text(json.dumps({"procs": a.procs, "steps": a.steps, "batch": a.batch, "rows": rows}))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(HERE))
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
