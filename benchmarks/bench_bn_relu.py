"""Benchmark: the BatchNorm + ReLU (+ max-pool) kernel (``shortcutlab.fused.bn_relu[_pool]``) against PyTorch's
modules followed by the fused ReLU + max-pool it replaces.

Two tables. Per block: one training-mode forward + backward of the ConvNet's blocks (bf16, channels-last, the
activations the pipeline normalises at batch 256), PyTorch's ``BatchNorm2d`` then ``relu_pool`` / ``relu`` against
the kernel. Per model: ConvNet training images/s (one Adam step, the pipeline's precision and memory format) with
the kernel turned off (``fused.bn_extension`` -> None: the modules' BatchNorm, then the ReLU + max-pool kernel, as
before session 25) and on, alternating, the median of ``--repeat`` runs, and whether the two trained the same bytes
(weights and running statistics after every run). Run it alone: two torch processes at once slow each other.

    python benchmarks/bench_bn_relu.py [--batch 256] [--steps 20] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import statistics

import torch
from bench_relu_pool import ab_args, ms_per_call, report, train
from torch import nn
from torch.nn import functional as F

from shortcutlab import fused
from shortcutlab.params import Compute
from shortcutlab.runtime import resolve

MODELS = {
    "convnet (+2 context convs)": ("convnet", {"widths": [16, 32, 64], "context": 2}),
    "convnet (no context)": ("convnet", {"widths": [16, 32, 64], "context": 0}),
}
# (channels, side, pooled) of the ConvNet's blocks: stem, layer2 (both pooled after), layer3 and the context convs
BLOCKS = [(16, 28, True), (32, 14, True), (64, 7, False)]


def block_row(batch: int, c: int, side: int, pool: bool, n: int) -> dict:
    x = (torch.randn(batch, c, side, side) * 2 + 0.3).bfloat16().contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    out_side = side // 2 if pool else side
    g = torch.randn(batch, c, out_side, out_side).bfloat16().contiguous(memory_format=torch.channels_last)
    bn = nn.BatchNorm2d(c)

    def run(f):
        def call():
            x.grad = bn.weight.grad = bn.bias.grad = None
            f(x, bn).backward(g)

        return call

    modules = (lambda t, m: fused.relu_pool(m(t))) if pool else (lambda t, m: F.relu(m(t)))
    eager = ms_per_call(run(modules), n)
    fast = ms_per_call(run(fused.bn_relu_pool if pool else fused.bn_relu), n)
    return {
        "block": [batch, c, side, "pool" if pool else "relu"],
        "before_ms": eager,
        "kernel_ms": fast,
        "speedup": eager / fast,
    }


def model_row(arch: str, kw: dict, rt, batch: int, steps: int, repeat: int) -> dict:
    rates = {False: [], True: []}
    same = True
    real = fused.bn_extension
    try:
        for _ in range(repeat):  # alternate, so that a drifting machine hits both alike
            out = {}
            for on in (False, True):
                fused.bn_extension = real if on else (lambda: None)
                out[on] = train(arch, kw, rt, batch, steps, modules_path=False)
                rates[on].append(out[on][0])
            same &= torch.equal(out[False][1], out[True][1])
    finally:
        fused.bn_extension = real
    before, after = statistics.median(rates[False]), statistics.median(rates[True])
    return {"before_images_per_s": before, "kernel_images_per_s": after, "speedup": after / before, "same_bytes": same}


def main(argv=None) -> dict:
    args = ab_args(argv)
    if fused.bn_extension() is None:
        raise SystemExit(
            "the BatchNorm kernel is not used here (no compiler, SHORTCUTLAB_FUSED=0, or its check failed)"
        )
    rt = resolve(Compute(device="cpu", precision="bf16", threads=0))
    out = {"blocks": [block_row(args.batch, c, s, p, 3 * args.steps) for c, s, p in BLOCKS]}
    out["models"] = {k: model_row(a, kw, rt, args.batch, args.steps, args.repeat) for k, (a, kw) in MODELS.items()}
    return report(out, args.json)


if __name__ == "__main__":
    main()
