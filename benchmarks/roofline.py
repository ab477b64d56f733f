"""A second floor beside the arithmetic one: the bytes eager PyTorch must move, over this machine's bandwidth.

The issue's floor is FLOPs over the bf16 matmul peak. A small CNN cannot reach it however well it is run: in
eager mode every operator reads its inputs from memory and writes its outputs back, and for a 3x3 convolution
with 16-32 channels, a ReLU or a max-pool that traffic takes longer than the arithmetic. This module counts it.

- :class:`TrafficMode` is a ``TorchDispatchMode`` (the mechanism ``torch.utils.flop_counter`` uses): for every
  ATen operator that runs inside it, forward and backward, it adds the bytes of the tensors the operator reads
  and writes. Views and allocations without a fill move nothing and are not counted. Each tensor counts once
  per operator, at its full size: a lower bound on what eager execution streams (a kernel that reads its
  input twice, or caches that spill, only add to it), and an upper bound only where a whole step's tensors
  stay in cache.
- :func:`stream_bandwidth` is the machine's measured memory bandwidth in the same bytes: the fastest of three
  streaming operators (a copy, an in-place scale, an add) on buffers of ``mib`` MiB, beyond the caches.

The bandwidth floor of a training step is its counted bytes over that bandwidth; the roofline floor is the
larger of it and the arithmetic floor. ``python benchmarks/roofline.py`` checks the counter against the clock:
streaming operators on buffers beyond the caches, their counted bytes per second as a share of the bandwidth
(a floor only holds if none exceeds 1). ``bench_models.py`` prints both for every model family; ``floor.py``
adds up both floors over the pipeline's stages (:func:`bytes_per_forward`).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from functools import cache

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from shortcutlab.models import build
from shortcutlab.optim import Adam
from shortcutlab.params import Compute
from shortcutlab.runtime import keep_freed_memory, resolve

# allocations whose contents are not written (an empty tensor, a fresh storage): no traffic
NO_TRAFFIC = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "set_", "resize_"}
# in-place operators that overwrite their destination without reading it
WRITE_ONLY = {"copy_", "fill_", "zero_", "uniform_", "normal_", "random_", "bernoulli_", "exponential_"}


def _bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class TrafficMode(TorchDispatchMode):
    """Counts the bytes every operator reads and writes (``total``, and ``by_op`` per ATen operator name).

    Reads: each distinct input tensor once (``x + x`` reads ``x`` once), not an ``out=`` tensor, nor the
    destination of a write-only operator (``copy_``, ``fill_``, ``zero_``). Writes: each distinct output once;
    an in-place operator (``mul_``) reads and writes its tensor."""

    def __init__(self):
        super().__init__()
        self.total = 0
        self.by_op: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if func.is_view or name in NO_TRAFFIC:
            return out
        written = _distinct(tree_leaves(out))
        skip = set(written) if name in WRITE_ONLY else set()
        skip |= set(_distinct(tree_leaves(kwargs.get("out"))))
        read = _distinct(tree_leaves((args, {k: v for k, v in kwargs.items() if k != "out"})))
        moved = sum(v for k, v in read.items() if k not in skip) + sum(written.values())
        self.total += moved
        self.by_op[name] += moved
        return out


def _distinct(leaves) -> dict[tuple, int]:
    """Bytes of each distinct tensor among ``leaves``, keyed by where its data lies."""
    return {(t.data_ptr(), _bytes(t)): _bytes(t) for t in leaves if isinstance(t, torch.Tensor)}


def count_traffic(fn) -> TrafficMode:
    """Run ``fn()`` once inside a :class:`TrafficMode` and return the mode (its ``total`` and ``by_op``)."""
    with TrafficMode() as mode:
        fn()
    return mode


def stream_bandwidth(mib: int = 256, reps: int = 5, trials: int = 7) -> float:
    """The fastest rate, in the bytes :class:`TrafficMode` counts, at which a streaming operator runs through a
    ``mib``-MiB float32 buffer: the best of a copy (``dst.copy_(src)``: reads src, writes dst), an in-place scale
    (``x.mul_(1)``: reads and writes x) and an add into a third buffer (``torch.add(a, b, out=c)``), each the
    median of ``trials`` timings of ``reps`` calls after a warm-up trial. The best one makes the floor a floor:
    no operator moves counted bytes faster than the fastest of these."""
    a = torch.ones(mib << 18)
    b, c = torch.ones_like(a), torch.zeros_like(a)
    kernels = {
        "copy": (lambda: c.copy_(a), 2),
        "scale": (lambda: a.mul_(1.0), 2),
        "add": (lambda: torch.add(a, b, out=c), 3),
    }
    best = 0.0
    for fn, streams in kernels.values():
        rates = []
        for _ in range(trials + 1):
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            rates.append(streams * a.numel() * 4 * reps / (time.perf_counter() - t0))
        best = max(best, statistics.median(rates[1:]))
    return best


def train_step(model, rt, batch: int):
    """One Adam training step on a synthetic batch, as a closure (three warm-up steps already taken)."""
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
    return step


@cache
def _bytes_per_forward(arch: str, kw: tuple, batch: int) -> float:
    torch.manual_seed(0)
    rt = resolve(Compute(device="cpu", precision="bf16", threads=0))
    model = build(arch, **dict(kw))
    model.register_forward_hook(lambda *a: None)  # a hook: the modules' path, whose operators the mode sees
    step = train_step(model, rt, batch)
    return count_traffic(step).total / batch / 3


def bytes_per_forward(arch: str, batch: int = 256, **kw) -> float:
    """Bytes moved per image and "forward equivalent" of ``arch``: one bf16 + channels_last training step's
    traffic per image, divided by 3 (the floor's convention: a training step = 3 forwards), so that
    ``floor.py``'s multipliers turn it into a stage's bytes as they turn forward FLOPs into its FLOPs. Counted
    through PyTorch's own ReLU and max-pool (the fused kernel of ``shortcutlab.fused`` moves fewer bytes, and
    a dispatch mode does not see it): the floor stays eager PyTorch's, as before."""
    key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kw.items()))
    return _bytes_per_forward(arch, key, batch)


def check(mib: int = 256) -> None:
    """Print each streaming operator's counted bytes per second as a share of :func:`stream_bandwidth`, with
    glibc keeping freed memory as the pipeline does (else each new output page-faults: 3x slower here)."""
    keep_freed_memory()
    bw = stream_bandwidth(mib)
    x = torch.randn(mib << 18)
    y, xb = torch.empty_like(x), x.bfloat16()
    ops = {
        "relu": lambda: torch.relu(x),
        "add x + x, out=": lambda: torch.add(x, x, out=y),
        "in-place scale": lambda: y.mul_(1.0),
        "copy_": lambda: y.copy_(x),
        "where(x > 0, x, y)": lambda: torch.where(x > 0, x, y),
        "bf16 relu": lambda: torch.relu(xb),
        "to bf16": lambda: x.to(torch.bfloat16),
        "sum": lambda: x.sum(),
    }
    print(f"streaming bandwidth ({mib} MiB buffers): {bw / 1e9:.1f} GB/s")
    for name, fn in ops.items():
        moved, times = count_traffic(fn).total, []
        for _ in range(7):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        rate = moved / statistics.median(times)
        print(f"{name:20} {moved / 2**20:6.0f} MiB counted  {rate / 1e9:5.1f} GB/s = {rate / bw:.2f} of the bandwidth")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="check the traffic counter against the clock (run it alone)")
    ap.add_argument("--mib", type=int, default=256)
    check(ap.parse_args().mib)
