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
- :func:`stream_bandwidth` is the machine's measured memory bandwidth: ``dst.copy_(src)`` on buffers of
  ``mib`` MiB (bytes read + bytes written per second), the median of several trials after a warm-up.

The bandwidth floor of a training step is its counted bytes over that bandwidth; the roofline floor is the
larger of it and the arithmetic floor. ``bench_models.py`` prints both for every model family; ``floor.py``
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
from shortcutlab.runtime import resolve

# allocations whose contents are not written (an empty tensor, a fresh storage): no traffic
NO_TRAFFIC = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "set_", "resize_"}


def _bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class TrafficMode(TorchDispatchMode):
    """Counts the bytes every operator reads and writes (``total``, and ``by_op`` per ATen operator name)."""

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
        moved = sum(_bytes(t) for t in tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor))
        self.total += moved
        self.by_op[name] += moved
        return out


def count_traffic(fn) -> TrafficMode:
    """Run ``fn()`` once inside a :class:`TrafficMode` and return the mode (its ``total`` and ``by_op``)."""
    with TrafficMode() as mode:
        fn()
    return mode


def stream_bandwidth(mib: int = 256, reps: int = 5, trials: int = 7) -> float:
    """Bytes per second of ``dst.copy_(src)`` on two ``mib``-MiB buffers (read + write counted), the median of
    ``trials`` timings of ``reps`` copies after a warm-up trial."""
    src = torch.ones(mib << 20, dtype=torch.uint8)
    dst = torch.zeros_like(src)
    rates = []
    for _ in range(trials + 1):
        t0 = time.perf_counter()
        for _ in range(reps):
            dst.copy_(src)
        rates.append(2 * src.numel() * reps / (time.perf_counter() - t0))
    return statistics.median(rates[1:])


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
    step = train_step(build(arch, **dict(kw)), rt, batch)
    return count_traffic(step).total / batch / 3


def bytes_per_forward(arch: str, batch: int = 256, **kw) -> float:
    """Bytes moved per image and "forward equivalent" of ``arch``: one bf16 + channels_last training step's
    traffic per image, divided by 3 (the floor's convention: a training step = 3 forwards), so that
    ``floor.py``'s multipliers turn it into a stage's bytes as they turn forward FLOPs into its FLOPs."""
    key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kw.items()))
    return _bytes_per_forward(arch, key, batch)
