"""Benchmark: gradients handed back channels-last at the global pool (``shortcutlab.fused.grad_channels_last``).

A global average pool's backward writes an NCHW gradient into a channels-last activation; the ReLU (or the sum of two
gradients) under it then mixes layouts, and in ConvNet training the last BatchNorm + ReLU block fell back from its
kernel's backward to PyTorch's operators. Since session 28 the ConvNet and the attention CNN hand that gradient back
channels-last where no hook watches the model (the shape CNN was measured too: no gain, not kept). Per family and
per use, with it off (``models.grad_channels_last`` replaced by the identity: the gradient as the pool writes it, as
before) and on, alternating, the median of ``--repeat`` runs: a training step (one Adam step, the pipeline's
precision and memory format) and an eval-mode input gradient (what the attacks and saliency maps compute), and
whether both ways give the same bytes (the trained weights and running statistics; the input gradient). Run it
alone: two torch processes at once slow each other.

    python benchmarks/bench_grad_layout.py [--batch 256] [--steps 20] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import statistics
import time

import torch
from bench_relu_pool import ab_args, report, train
from torch.nn import functional as F

from shortcutlab import models
from shortcutlab.models import build
from shortcutlab.params import Compute
from shortcutlab.runtime import resolve

FAMILIES = {
    "convnet (+2 context convs)": ("convnet", {"widths": [16, 32, 64], "context": 2}),
    "attention CNN": ("attention", {}),
}


def input_gradient(arch: str, kw: dict, rt, batch: int, steps: int) -> tuple[float, torch.Tensor]:
    """images/s of ``steps`` eval-mode input gradients of the cross-entropy (after two warm-up calls), and the last
    gradient's bytes."""
    torch.manual_seed(0)
    model = rt.prepare(build(arch, **kw)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(1)
    x = rt.input(torch.randint(0, 256, (batch, 3, 28, 28), generator=gen, dtype=torch.uint8).float() / 255)
    y = torch.randint(0, 10, (batch,), generator=gen)

    def call():
        xx = x.detach().requires_grad_(True)
        with rt.autocast():
            loss = F.cross_entropy(model(xx).float(), y)
        return torch.autograd.grad(loss, xx)[0]

    for _ in range(2):
        call()
    t0 = time.perf_counter()
    for _ in range(steps):
        g = call()
    ips = batch * steps / (time.perf_counter() - t0)
    return ips, g.contiguous().view(torch.int16 if g.dtype == torch.bfloat16 else torch.int32)


def family_row(arch: str, kw: dict, rt, batch: int, steps: int, repeat: int) -> dict:
    real = models.grad_channels_last
    row = {}
    try:
        uses = {
            "train": lambda: train(arch, kw, rt, batch, steps, modules_path=False),
            "input_grad": lambda: input_gradient(arch, kw, rt, batch, steps),
        }
        for use, run in uses.items():
            rates, same = {False: [], True: []}, True
            for _ in range(repeat):  # alternate, so that a drifting machine hits both alike
                out = {}
                for on in (False, True):
                    models.grad_channels_last = real if on else (lambda t, model: t)
                    out[on] = run()
                    rates[on].append(out[on][0])
                same &= torch.equal(out[False][1], out[True][1])
            off, on = statistics.median(rates[False]), statistics.median(rates[True])
            row[use] = {"off_images_per_s": off, "on_images_per_s": on, "speedup": on / off, "same_bytes": same}
    finally:
        models.grad_channels_last = real
    return row


def main(argv=None) -> dict:
    args = ab_args(argv)
    rt = resolve(Compute(device="cpu", precision="bf16", threads=0))
    out = {k: family_row(a, kw, rt, args.batch, args.steps, args.repeat) for k, (a, kw) in FAMILIES.items()}
    return report(out, args.json)


if __name__ == "__main__":
    main()
