"""Probe: do ReBias's HSIC penalties give the same bits on one thread and on every core?

ReBias once gave different bytes in one of a dozen identical runs (README, "Reproducibility"). This probe checks one
suspect, the thread count: for each HSIC estimator of ``debias.HSIC`` and the shapes ReBias trains with (batch
``--batch`` of pooled features, ``--dims`` wide, under bf16 autocast where the CPU computes bf16 natively), it
computes the penalty and its gradients with ``torch.set_num_threads(1)`` and with every core, ``--repeat`` times
each, and prints whether the value and the gradients are byte-identical across all of them. A probe, not a timing:
it prints facts about bits, never seconds.

    python benchmarks/probe_hsic_threads.py [--batch 256] [--dims 64,32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os

import torch

from shortcutlab.debias import HSIC
from shortcutlab.params import Compute
from shortcutlab.runtime import resolve


def digest(name: str, rt, batch: int, dims: tuple[int, int], seed: int = 0) -> str:
    """MD5 of the penalty HSIC(f, g) and its gradients with respect to both feature batches (post-ReLU features
    rounded to bf16, as the models hand them over under autocast)."""
    gen = torch.Generator().manual_seed(seed)
    f, g = (torch.randn(batch, d, generator=gen).relu().bfloat16().float().requires_grad_() for d in dims)
    with rt.autocast():
        value = HSIC[name](f, g)
    value.backward()
    return hashlib.md5(b"".join(t.detach().numpy().tobytes() for t in (value, f.grad, g.grad))).hexdigest()[:12]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--dims", default="64,32", help="feature widths: the ConvNet's pooled features, the color net's")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    dims = tuple(int(d) for d in args.dims.split(","))
    cores = os.cpu_count() or 1
    rt = resolve(Compute(device="cpu", precision="auto", threads=0))
    same_everywhere = True
    for name in HSIC:
        seen = {}
        for threads in (1, cores):
            torch.set_num_threads(threads)
            seen[threads] = {digest(name, rt, args.batch, dims) for _ in range(args.repeat)}
        same = len(set().union(*seen.values())) == 1
        same_everywhere &= same
        shown = "; ".join(f"{t} thread(s): {', '.join(sorted(d))}" for t, d in seen.items())
        print(f"{name:10s} batch {args.batch} dims {dims}: {'same bits' if same else 'DIFFERENT bits'} ({shown})")
    torch.set_num_threads(cores)
    print("all byte-identical" if same_everywhere else "some differ between thread counts or repeats")


if __name__ == "__main__":
    main()
