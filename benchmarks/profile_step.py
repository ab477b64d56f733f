"""Benchmark: where one training step of a model family spends its time, operator by operator.

`torch.profiler` over bf16 training steps of one family (the families of ``bench_models.py``, synthetic batch,
the pipeline's runtime: autocast, channels_last, the fused ReLU + max-pool kernel where it applies, glibc's
allocator kept from unmapping, as every stage runs). Prints the step time and each operator's self CPU time per
step, the most first, and the share that matrix products and convolutions take: the rest is memory-bound work
(casts, softmax, norms, elementwise) that a faster matmul unit does not shorten. Run it alone.

    python benchmarks/profile_step.py --family ViT [--batch 256] [--steps 10] [--top 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from bench_models import FAMILIES
from roofline import train_step
from torch.profiler import ProfilerActivity, profile

from shortcutlab.models import build
from shortcutlab.params import Compute
from shortcutlab.runtime import resolve

MATMUL = ("aten::mm", "aten::bmm", "aten::addmm", "aten::mkldnn_convolution", "aten::convolution_backward")


def profile_family(family: str, batch: int, steps: int, precision: str = "bf16") -> dict:
    arch, kw = FAMILIES[family]
    torch.manual_seed(0)
    step = train_step(build(arch, **kw), resolve(Compute(device="cpu", precision=precision, threads=0)), batch)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    step_ms = (time.perf_counter() - t0) / steps * 1e3
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    ops = {e.key: e.self_cpu_time_total / 1e3 / steps for e in prof.key_averages() if e.self_cpu_time_total > 0}
    ops = dict(sorted(ops.items(), key=lambda kv: -kv[1]))
    total = sum(ops.values())
    matmul = sum(v for k, v in ops.items() if k in MATMUL)
    return {
        "family": family,
        "batch": batch,
        "step_ms": step_ms,
        "profiled_ms_per_step": total,
        "matmul_and_conv_share": matmul / total,
        "ops_ms_per_step": ops,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", choices=list(FAMILIES), default="ViT")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    res = profile_family(args.family, args.batch, args.steps)
    print(
        f"{res['family']}, batch {res['batch']}: {res['step_ms']:.1f} ms a step unprofiled, "
        f"{res['profiled_ms_per_step']:.1f} ms profiled; matrix products and convolutions "
        f"{100 * res['matmul_and_conv_share']:.0f}%"
    )
    for name, ms in list(res["ops_ms_per_step"].items())[: args.top]:
        print(f"  {name:<45} {ms:8.2f} ms  {100 * ms / res['profiled_ms_per_step']:5.1f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
