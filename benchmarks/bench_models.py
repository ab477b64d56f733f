"""Benchmark: how far each model family trains from this machine's arithmetic peak, and why.

For every architecture the pipeline trains: forward FLOPs per image (``torch.utils.flop_counter``), training
images/s (one Adam step = forward + backward, synthetic uint8 batch converted as in training), the achieved
FLOP/s (3 x forward FLOPs x images/s) and its share of this machine's measured matmul peak in bf16 and fp32
(``floor.matmul_peak``: square 4096 matmuls, the median of nine trials after a warm-up). Then the memory side
(``roofline.py``): the bytes one training step's operators read and write per image, counted as eager PyTorch
runs them, over the measured streaming bandwidth; the roofline rate is the lower of the arithmetic and the bandwidth
rates, and the last column is the measured rate's share of it. Run it alone: two torch processes at once slow
each other down.

    python benchmarks/bench_models.py [--batch 256] [--steps 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from floor import matmul_peak
from roofline import count_traffic, stream_bandwidth, train_step
from torch.utils.flop_counter import FlopCounterMode

from shortcutlab.models import build
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


def forward_flops(model: torch.nn.Module) -> float:
    with FlopCounterMode(display=False) as fc:
        model(torch.rand(1, 3, 28, 28))
    return float(fc.get_total_flops())


def train_rate(step, batch: int, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def measure(arch: str, kw: dict, prec: str, fwd: float, peak: float, bw: float, batch: int, steps: int) -> dict:
    rt = resolve(Compute(device="cpu", precision=prec, threads=0))
    model = build(arch, **kw)
    step = train_step(model, rt, batch)
    ips = train_rate(step, batch, steps)
    model.register_forward_hook(lambda *a: None)  # count eager PyTorch's operators (the fused kernel is invisible)
    moved = count_traffic(step).total / batch  # bytes per image, one step's operators
    flop_rate, byte_rate = peak / (3 * fwd), bw / moved  # images/s at the arithmetic / the bandwidth floor
    return {
        f"{prec}_images_per_s": ips,
        f"{prec}_gflops": 3 * fwd * ips / 1e9,
        f"{prec}_share_of_{prec}_peak": 3 * fwd * ips / peak,
        f"{prec}_mb_per_image": moved / 1e6,
        f"{prec}_bound": "bandwidth" if byte_rate < flop_rate else "arithmetic",
        f"{prec}_share_of_roofline": ips / min(flop_rate, byte_rate),
    }


def describe(row: dict, prec: str) -> str:
    return (
        f"{prec} {row[f'{prec}_images_per_s']:8.0f} img/s {row[f'{prec}_gflops']:6.1f} GFLOP/s "
        f"({100 * row[f'{prec}_share_of_{prec}_peak']:4.1f}% of peak), {row[f'{prec}_mb_per_image']:5.2f} MB/img, "
        f"{row[f'{prec}_bound']}-bound, {100 * row[f'{prec}_share_of_roofline']:4.1f}% of roofline"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--peak-size", type=int, default=4096, help="matmul side for the peaks (smaller: faster)")
    ap.add_argument("--bandwidth-mib", type=int, default=256, help="copy buffer size for the bandwidth")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.manual_seed(0)
    peaks = {p: matmul_peak(dt, n=args.peak_size) for p, dt in (("bf16", torch.bfloat16), ("fp32", torch.float32))}
    bw = stream_bandwidth(args.bandwidth_mib)
    print(
        f"matmul peak: bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s, fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s; "
        f"streaming bandwidth {bw / 1e9:.1f} GB/s"
    )
    rows = []
    for name, (arch, kw) in FAMILIES.items():
        fwd = forward_flops(build(arch, **kw).eval())
        row = {"family": name, "forward_mflop": fwd / 1e6}
        for prec in ("bf16", "fp32"):
            row |= measure(arch, kw, prec, fwd, peaks[prec], bw, args.batch, args.steps)
        rows.append(row)
        print(f"{name:28s} {row['forward_mflop']:6.2f} MFLOP/img | {describe(row, 'bf16')} | {describe(row, 'fp32')}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "peaks_gflops": {k: v / 1e9 for k, v in peaks.items()},
                    "bandwidth_gb_per_s": bw / 1e9,
                    "batch": args.batch,
                    "rows": rows,
                },
                f,
                indent=2,
            )
