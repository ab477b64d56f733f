"""Adam in plain tensor ops.

``torch.optim`` imports ``torch._dynamo`` the first time an optimizer is built (1.0-1.4 s per process on
our 2-core CPUs), a cost every training, SAE and explain stage paid once per run: ~40 stages, close to a
minute of a from-scratch ``dvc repro``. This is the same update as ``torch.optim.Adam``'s single-tensor
path (amsgrad off, L2 weight decay added to the gradient, bias corrections in Python floats); the tests
check it bit-for-bit against ``torch.optim.Adam`` with and without a learning-rate schedule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class Adam:
    """``Adam(params, lr)``, then ``zero_grad()``, ``backward()``, ``step()`` as with torch.optim.
    ``lr`` is a plain attribute: a schedule sets it before each step."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        self.params = list(params)
        if not self.params:
            raise ValueError("Adam got an empty parameter list")
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        b1, b2 = self.betas
        step_size = self.lr / (1 - b1**self.steps)
        bc2_sqrt = (1 - b2**self.steps) ** 0.5
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            if p.grad is None:
                continue
            g = p.grad if self.weight_decay == 0 else p.grad.add(p, alpha=self.weight_decay)
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (v.sqrt() / bc2_sqrt).add_(self.eps), value=-step_size)


def cosine(step: int, total: int) -> float:
    """Cosine decay factor from 1 at step 0 to 0 at ``total`` (and after)."""
    return 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
