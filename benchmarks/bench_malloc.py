"""Benchmark: training images/s with glibc's default allocator settings against ``runtime.keep_freed_memory``.

Each model family of ``bench_models.py`` (and the consistency objective: two views of every batch on the
study's two-conv network) trains ``--steps`` Adam steps on a synthetic batch in a fresh process, once with
``SHORTCUTLAB_MALLOC=default`` (glibc maps large blocks afresh and unmaps them on free) and once with the
pipeline's setting (every block from the heap, freed memory kept), alternating, ``--repeat`` times. Printed per
workload: median images/s of each, the speed-up, and the kernel (system) time and minor page faults per step.
Run it alone: two torch processes at once slow each other down.

    python benchmarks/bench_malloc.py [--steps 30] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

WORKLOADS = ["lazy", "two_conv", "shape_cnn (width 1.0)", "convnet (+2 context convs)", "attention CNN", "ViT"]
WORKLOADS += ["two_conv, consistency objective"]


def child(name: str, batch: int, steps: int) -> dict:
    import torch
    import torch.nn.functional as F
    from bench_models import FAMILIES

    from shortcutlab.debias import Consistency
    from shortcutlab.models import build
    from shortcutlab.optim import Adam
    from shortcutlab.params import Compute
    from shortcutlab.runtime import resolve

    torch.manual_seed(0)
    rt = resolve(Compute(device="cpu", precision="auto", threads=0))
    arch, kw = FAMILIES["two_conv" if name.startswith("two_conv,") else name]
    model = rt.prepare(build(arch, **kw)).train()
    opt = Adam(list(model.parameters()), lr=1e-3)
    x8 = torch.randint(0, 256, (batch, 3, 28, 28), dtype=torch.uint8)
    y = torch.randint(0, 10, (batch,))
    jitter = dict(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.3, extreme_frac=0.5)
    objective = Consistency(5.0, 0, rt, **jitter) if name.startswith("two_conv,") else None

    def step():
        x = rt.input(x8.float().div_(255.0))
        with rt.autocast():
            loss = objective.loss(model, x, y, None)[0] if objective else F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(steps):
        step()
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    return {
        "images_per_s": batch * steps / wall,
        "sys_ms_per_step": 1000 * (r1.ru_stime - r0.ru_stime) / steps,
        "minor_faults_per_step": (r1.ru_minflt - r0.ru_minflt) / steps,
        "max_rss_mib": r1.ru_maxrss / 1024,
    }


def run(name: str, setting: str, batch: int, steps: int) -> dict:
    env = dict(os.environ, SHORTCUTLAB_MALLOC=setting)
    cmd = [sys.executable, __file__, "--child", name, "--batch", str(batch), "--steps", str(steps)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default="")
    ap.add_argument("--workloads", nargs="+", default=WORKLOADS, choices=WORKLOADS, metavar="NAME")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.batch, args.steps)))
        sys.exit(0)
    rows = []
    for name in args.workloads:
        runs = {"default": [], "kept": []}
        for _ in range(args.repeat):
            for setting in runs:
                runs[setting].append(run(name, setting, args.batch, args.steps))
        row = {"workload": name}
        for setting, rs in runs.items():
            for key in rs[0]:
                row[f"{setting}_{key}"] = statistics.median(r[key] for r in rs)
        row["speedup"] = row["kept_images_per_s"] / row["default_images_per_s"]
        rows.append(row)
        print(
            f"{name:32s} default {row['default_images_per_s']:7.0f} img/s "
            f"(sys {row['default_sys_ms_per_step']:5.1f} ms/step, "
            f"{row['default_minor_faults_per_step']:6.0f} faults/step)"
            f" | kept {row['kept_images_per_s']:7.0f} img/s (sys {row['kept_sys_ms_per_step']:5.1f} ms/step, "
            f"{row['kept_minor_faults_per_step']:6.0f} faults/step) | {row['speedup']:.2f}x",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"batch": args.batch, "steps": args.steps, "repeat": args.repeat, "rows": rows}, f, indent=2)
