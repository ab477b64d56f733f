"""ReLU + 2x2 max-pool as one C++ kernel (``kernels/relu_pool.cpp``): the same bits as PyTorch's pair, faster.

In eager PyTorch, ``max_pool2d(relu(y), 2)`` on a channels-last bf16 activation runs four memory-bound kernels
over the full-size tensor (relu, the pool with int64 indices, the pool's zero-filled scatter backward, relu's
threshold backward) at 5-25 GB/s; on the two-conv network they were half of a training step (issue 17,
benchmarks/README.md "ReLU + max-pool"). The kernel reads the activation once forward, writes its gradient once
backward and keeps one byte per pooled value. It reproduces PyTorch's rules exactly (relu keeps -0 and NaN; the
window is scanned row by row and a value wins when greater or NaN, so ties go to the first; the gradient
passes where the pooled relu output is > 0 or NaN, as 0 + g), so forward values and every gradient are
identical bit for bit, and a model trained through it has the same bytes (tests/test_fused.py, per family).
One exception, harmless: a NaN stays NaN in the same places, but PyTorch's vectorised relu rewrites its bits
(0xFFFF) and the kernel keeps them; a model with NaN activations has failed either way.

It is only an implementation: :func:`relu_pool` falls back to PyTorch's pair for anything but a 4-d
channels-last bf16/fp32 CPU tensor, when the extension cannot be built (no compiler: a warning, same results,
slower), or with ``SHORTCUTLAB_FUSED=0``. Models call it only where no hook watches a module (:func:`plain`):
Grad-CAM, SAEs and the neuron-suppression hook see the modules' own outputs, as before. The extension is
compiled once per machine (``native.py``: ~30 s, cached, keyed by the CPU's flags, the torch installation, the
source and the compiler flags: it is built for the CPU it runs on, and every checkout of one environment shares
the build). Second
derivatives through it are not implemented (an error, never a wrong value); the one caller that needs them,
Grad-CAM's differentiable mode, hooks the model and so takes PyTorch's path."""

from __future__ import annotations

from functools import cache

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from . import native

SOURCE = native.KERNELS / "relu_pool.cpp"


@cache
def extension():
    """The compiled kernel, or None (disabled, or it could not be built: then a warning, once)."""
    return native.load(SOURCE, ["-O3", "-fopenmp"] + native.native_flags())


class _ReluPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y):
        p, code = extension().forward(y)
        ctx.save_for_backward(code)
        ctx.size = y.shape[2:]
        return p

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (code,) = ctx.saved_tensors
        return extension().backward(g, code, ctx.size[0], ctx.size[1])


def supported(y: torch.Tensor) -> bool:
    return (
        y.device.type == "cpu"
        and y.dim() == 4
        and y.dtype in (torch.bfloat16, torch.float32)
        and y.is_contiguous(memory_format=torch.channels_last)
        and y.shape[2] >= 2
        and y.shape[3] >= 2
    )


def relu_pool(y: torch.Tensor) -> torch.Tensor:
    """``max_pool2d(relu(y), 2)``, bit for bit, through the fused kernel where it applies."""
    if supported(y) and extension() is not None:
        return _ReluPool.apply(y)
    return F.max_pool2d(F.relu(y), 2)


def plain(model: nn.Module, own=()) -> bool:
    """True when no hook watches any of the model's modules (nor a global module hook): then a forward may
    skip calling the ReLU and MaxPool modules it fuses. Any hook, e.g. Grad-CAM's, gives the modules' path,
    except the forward hooks in ``own``: the model's own (neuron suppression), which its fused path applies itself."""
    from torch.nn.modules import module as m

    if (
        m._global_forward_hooks
        or m._global_forward_pre_hooks
        or m._global_backward_hooks
        or m._global_backward_pre_hooks
    ):
        return False
    return not any(
        any(h not in own for h in mod._forward_hooks.values())
        or mod._forward_pre_hooks
        or mod._backward_hooks
        or mod._backward_pre_hooks
        for mod in model.modules()
    )
