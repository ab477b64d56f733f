"""Benchmark: the fused ReLU + max-pool kernel (``shortcutlab.fused``) against PyTorch's own pair.

Two tables. Per operator: ``max_pool2d(relu(y), 2)`` forward + backward on the activations the pipeline pools
(bf16, channels-last), PyTorch's ops against the kernel. Per model family: training images/s (one Adam step,
the pipeline's precision and memory format) through the modules (a do-nothing forward hook forces PyTorch's
path) and through the kernel, alternating, the median of ``--repeat`` runs; and whether the two trained the
same bytes (weights after every step of every run). Run it alone: two torch processes at once slow each other.

    python benchmarks/bench_relu_pool.py [--batch 256] [--steps 20] [--repeat 3] [--precision bf16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.nn import functional as F

from shortcutlab import fused
from shortcutlab.models import build
from shortcutlab.params import Compute
from shortcutlab.runtime import resolve

FAMILIES = {
    "two_conv": ("two_conv", {}),
    "shape_cnn (width 1.0)": ("shape_cnn", {"width": 1.0}),
    "convnet (+2 context convs)": ("convnet", {"widths": [16, 32, 64], "context": 2}),
    "attention CNN": ("attention", {}),
}
# (batch, channels, side) of the pools the pipeline runs: the two-conv network's first pool at the consistency
# recipe's two-view batch, the shape CNN's two, the ConvNet's first
POOLS = [(512, 32, 28), (256, 64, 28), (256, 128, 14), (256, 16, 28)]


def ab_args(argv=None) -> argparse.Namespace:
    """The A/B benchmarks' arguments (a path timed off and on, alternating: bench_bn_relu, bench_grad_layout)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    return ap.parse_args(argv)


def report(out: dict, path: str | None) -> dict:
    """Print ``out`` as JSON and write it to ``path`` if given."""
    print(json.dumps(out, indent=2))
    if path:
        with open(path, "w") as f:
            json.dump(out, f, indent=2)
    return out


def ms_per_call(fn, n: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e3


def pool_row(shape: tuple, n: int) -> dict:
    b, c, s = shape
    y = torch.randn(b, c, s, s).bfloat16().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    g = torch.randn(b, c, s // 2, s // 2).bfloat16().contiguous(memory_format=torch.channels_last)

    def run(f):
        def call():
            y.grad = None
            f(y).backward(g)

        return call

    eager = ms_per_call(run(lambda t: F.max_pool2d(F.relu(t), 2)), n)
    fast = ms_per_call(run(fused.relu_pool), n)
    return {"shape": list(shape), "pytorch_ms": eager, "fused_ms": fast, "speedup": eager / fast}


def train(arch: str, kw: dict, rt, batch: int, steps: int, modules_path: bool) -> tuple[float, torch.Tensor]:
    """images/s of ``steps`` Adam steps (after two warm-up steps) and the weights' bytes at the end."""
    torch.manual_seed(0)
    model = rt.prepare(build(arch, **kw)).train()
    if modules_path:
        model.register_forward_hook(lambda *a: None)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(1)
    data = [
        (torch.randint(0, 256, (batch, 3, 28, 28), generator=gen, dtype=torch.uint8), torch.randint(0, 10, (batch,)))
        for _ in range(4)
    ]

    def step(i):
        x, y = data[i % len(data)]
        with rt.autocast():
            loss = F.cross_entropy(model(rt.input(x.float() / 255)).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(2):
        step(i)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    ips = batch * steps / (time.perf_counter() - t0)
    weights = torch.cat([t.detach().reshape(-1).contiguous().view(torch.uint8) for t in model.state_dict().values()])
    return ips, weights


def family_row(arch: str, kw: dict, rt, batch: int, steps: int, repeat: int) -> dict:
    rates = {True: [], False: []}
    same = True
    for _ in range(repeat):  # alternate, so that a drifting machine hits both alike
        (a, wa), (b, wb) = (train(arch, kw, rt, batch, steps, m) for m in (True, False))
        rates[True].append(a)
        rates[False].append(b)
        same &= torch.equal(wa, wb)
    eager, fast = statistics.median(rates[True]), statistics.median(rates[False])
    return {"pytorch_images_per_s": eager, "fused_images_per_s": fast, "speedup": fast / eager, "same_bytes": same}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    ap.add_argument("--pools", type=int, default=len(POOLS), help="how many of the pool shapes to time")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if fused.extension() is None:
        raise SystemExit("bench_relu_pool: the fused kernel is not available here (see the warning above)")
    rt = resolve(Compute(device="cpu", precision=args.precision, threads=0))
    out = {"precision": args.precision, "batch": args.batch, "pools": [], "families": {}}
    for shape in POOLS[: args.pools]:
        row = pool_row(shape, max(3, args.steps))
        out["pools"].append(row)
        print(
            f"pool {shape}: PyTorch {row['pytorch_ms']:6.2f} ms, fused {row['fused_ms']:6.2f} ms, "
            f"{row['speedup']:.2f}x (forward + backward, bf16)",
            flush=True,
        )
    for name in args.families:
        arch, kw = FAMILIES[name]
        row = family_row(arch, kw, rt, args.batch, args.steps, args.repeat)
        out["families"][name] = row
        print(
            f"{name:28s} {args.precision}: PyTorch {row['pytorch_images_per_s']:8.0f} img/s, fused "
            f"{row['fused_images_per_s']:8.0f} img/s, {row['speedup']:.2f}x, same bytes: {row['same_bytes']}",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
