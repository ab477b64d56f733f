"""Benchmark: can a byte-identical 2x2 max-pool beat PyTorch's on this CPU? (session 19: no)

In the two-conv network's training step the first max-pool (32 channels at 28x28, bf16, channels-last) moves
≈ 141 MB forward + backward per 512 images at ≈ 12 GB/s, a fifth of the streaming bandwidth
(``roofline.py``). Two rewrites give exactly PyTorch's values and gradients (the first maximum of each window in
row-major order wins ties, NaN wins, the gradient goes to that element only):

- ``views``: the four strided views of each window compared with ``torch.where`` (no int64 indices: the
  winner's position is a uint8);
- ``via fp32``: PyTorch's pool on an fp32 copy (exact both ways: bf16 -> fp32 -> bf16 loses nothing).

Prints the median forward + backward time of each and whether its output and gradient equal PyTorch's, byte for
byte. Run it alone.

    python benchmarks/bench_maxpool.py [--batch 512] [--channels 32] [--size 28] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


class ViewsMaxPool2x2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        v = [x[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)]
        m, sel = v[0], torch.zeros(v[0].shape, dtype=torch.uint8)
        for k in (1, 2, 3):
            take = (v[k] > m) | v[k].isnan()
            m, sel = torch.where(take, v[k], m), torch.where(take, k, sel)
        fmt = torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) else None
        ctx.save_for_backward(sel)
        ctx.shape, ctx.fmt = x.shape, fmt or torch.contiguous_format
        return m.contiguous(memory_format=ctx.fmt)

    @staticmethod
    def backward(ctx, g):
        (sel,) = ctx.saved_tensors
        gi = g.new_zeros(ctx.shape).contiguous(memory_format=ctx.fmt)
        zero = g.new_zeros(())
        for k, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            gi[:, :, i::2, j::2] = torch.where(sel == k, g, zero)
        return gi


POOLS = {
    "pytorch": lambda x: F.max_pool2d(x, 2),
    "views": ViewsMaxPool2x2.apply,
    "via fp32": lambda x: F.max_pool2d(x.float(), 2).to(x.dtype),
}


def median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main(batch: int, channels: int, size: int, repeat: int) -> dict:
    torch.manual_seed(0)
    x = torch.randn(batch, channels, size, size).relu()  # ReLU'd, as in the network: many ties at 0
    x[0, 0, 0, :2] = 1.0  # and a tie between positive values
    x = x.bfloat16().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    g = torch.randn(batch, channels, size // 2, size // 2).bfloat16().contiguous(memory_format=torch.channels_last)

    def fwd_bwd(pool):
        y = pool(x)
        return y, torch.autograd.grad(y, x, g)[0]

    ref = fwd_bwd(POOLS["pytorch"])
    out = {}
    for name, pool in POOLS.items():
        y, gx = fwd_bwd(pool)
        same = torch.equal(y, ref[0]) and torch.equal(gx, ref[1])
        out[name] = {"ms": median_ms(lambda p=pool: fwd_bwd(p), repeat), "same_bytes": same}
        print(f"{name:9} forward + backward {out[name]['ms']:7.2f} ms  byte-identical to PyTorch's: {same}")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    main(a.batch, a.channels, a.size, a.repeat)
