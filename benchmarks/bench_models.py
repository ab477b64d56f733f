"""Benchmark: how far each model family trains from this machine's arithmetic peak.

For every architecture the pipeline trains: forward FLOPs per image (``torch.utils.flop_counter``), training
images/s (one Adam step = forward + backward, synthetic uint8 batch converted as in training), the achieved
FLOP/s (3 x forward FLOPs x images/s) and its share of this machine's measured matmul peak in bf16 and fp32
(a square 2048 matmul). Run it alone: two torch processes at once slow each other down.

    python benchmarks/bench_models.py [--batch 256] [--steps 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from shortcutlab.models import build
from shortcutlab.optim import Adam
from shortcutlab.params import Compute
from shortcutlab.runtime import resolve

FAMILIES = {
    "lazy": ("lazy", {}),
    "two_conv": ("two_conv", {}),
    "shape_cnn (width 1.0)": ("shape_cnn", {"width": 1.0}),
    "convnet (+2 context convs)": ("convnet", {"widths": [16, 32, 64], "context": 2}),
    "attention CNN": ("attention", {}),
    "ViT": ("vit", {}),
    "MLP (LfF protocol, 2352-100-100-100-10)": ("mlp", {"hidden": 100, "depth": 3}),
}


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def forward_flops(model: torch.nn.Module) -> float:
    with FlopCounterMode(display=False) as fc:
        model(torch.rand(1, 3, 28, 28))
    return float(fc.get_total_flops())


def train_rate(model, rt, batch: int, steps: int) -> float:
    model = rt.prepare(model).train()
    opt = Adam(list(model.parameters()), lr=1e-3)
    x8 = torch.randint(0, 256, (batch, 3, 28, 28), dtype=torch.uint8)
    y = torch.randint(0, 10, (batch,))

    def step():
        x = rt.input(x8.float().div_(255.0))
        with rt.autocast():
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.manual_seed(0)
    peaks = {"bf16": matmul_peak(torch.bfloat16), "fp32": matmul_peak(torch.float32)}
    print(f"matmul peak: bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s, fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s")
    rows = []
    for name, (arch, kw) in FAMILIES.items():
        fwd = forward_flops(build(arch, **kw).eval())
        row = {"family": name, "forward_mflop": fwd / 1e6}
        for prec in ("bf16", "fp32"):
            rt = resolve(Compute(device="cpu", precision=prec, threads=0))
            ips = train_rate(build(arch, **kw), rt, args.batch, args.steps)
            achieved = 3 * fwd * ips
            row |= {
                f"{prec}_images_per_s": ips,
                f"{prec}_gflops": achieved / 1e9,
                f"{prec}_share_of_{prec}_peak": achieved / peaks[prec],
            }
        rows.append(row)
        print(
            f"{name:28s} {row['forward_mflop']:7.2f} MFLOP/img | bf16 {row['bf16_images_per_s']:8.0f} img/s "
            f"{row['bf16_gflops']:6.1f} GFLOP/s ({100 * row['bf16_share_of_bf16_peak']:4.1f}% of bf16 peak) | "
            f"fp32 {row['fp32_images_per_s']:8.0f} img/s {row['fp32_gflops']:6.1f} GFLOP/s "
            f"({100 * row['fp32_share_of_fp32_peak']:4.1f}% of fp32 peak)",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"peaks_gflops": {k: v / 1e9 for k, v in peaks.items()}, "batch": args.batch, "rows": rows}, f, indent=2
            )
