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
Grad-CAM, SAEs and probes see the modules' own outputs, as before (the neuron-suppression hook is the model's own:
its fused path applies it). The extension is compiled once per machine (``native.py``: ~30 s, cached, keyed by the
CPU's flags, the torch installation, the source and the compiler flags: it is built for the CPU it runs on, and
every checkout of one environment shares the build). Second derivatives through it are not implemented (an error,
never a wrong value); the one caller that needs them, Grad-CAM's differentiable mode, hooks the model and so takes
PyTorch's path.

The lazy model's ``adaptive_avg_pool2d(relu(y), 2)`` gets the same treatment (``kernels/relu_avg_pool.cpp``,
:func:`relu_avg_pool`; session 24): bf16, channels-last, 16k channels, windows that tile the map. Its rules are
arithmetic (fp32 window sums divided by the window size; the backward's division rounded once for a channels-last
gradient, per dimension for an NCHW one, as PyTorch's two kernels do), so the extension is checked against
PyTorch's pair on a probe when it loads and is not used where they disagree."""

from __future__ import annotations

import warnings
from functools import cache

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from . import native

SOURCE = native.KERNELS / "relu_pool.cpp"
CL = torch.channels_last


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


AVG_SOURCE = native.KERNELS / "relu_avg_pool.cpp"


@cache
def avg_extension():
    """The ReLU + average-pool kernel, or None; checked against PyTorch's pair on a probe when it loads (its
    rounding rules are those of PyTorch's vectorised bf16 kernels: another build falls back, with a warning)."""
    ext = native.load(AVG_SOURCE, ["-O3", "-fopenmp", "-ffp-contract=off"] + native.native_flags())
    if ext is None:
        return None
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast("cpu", enabled=False):
        ok = _agrees(ext)  # whatever context the first caller is in (predict's no_grad, autocast)
    if not ok:
        warnings.warn("shortcutlab.fused: relu_avg_pool.cpp disagrees with PyTorch here; its ops used", stacklevel=2)
        return None
    return ext


def _agrees(ext) -> bool:
    g = torch.Generator().manual_seed(0)
    y = (torch.randn(16, 32, 28, 28, generator=g) * 4).to(torch.bfloat16)
    y.view(-1)[::7] = -0.0
    y = y.contiguous(memory_format=CL)
    want = F.adaptive_avg_pool2d(F.relu(y), 2)
    ok = torch.equal(_bits(ext.forward(y, 2, 2)), _bits(want))
    for layout in (torch.contiguous_format, CL):  # the backward's rule depends on the gradient's layout
        gout = torch.randn(16, 32, 2, 2, generator=g).to(torch.bfloat16).contiguous(memory_format=layout)
        ref = y.detach().requires_grad_(True)
        F.adaptive_avg_pool2d(F.relu(ref), 2).backward(gout)
        ok = ok and torch.equal(_bits(ext.backward(gout, y, layout != CL)), _bits(ref.grad))
    return ok


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().view(torch.int16)


class _ReluAvgPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, size):
        ctx.save_for_backward(y)
        return avg_extension().forward(y, size, size)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        if g.is_contiguous(memory_format=CL) or g.is_contiguous():  # PyTorch's rule follows the layout
            return avg_extension().backward(g, y, not g.is_contiguous(memory_format=CL)), None
        with torch.enable_grad():  # any other layout: PyTorch's own pair
            ref = y.detach().requires_grad_(True)
            return torch.autograd.grad(F.adaptive_avg_pool2d(F.relu(ref), g.shape[2:]), ref, g)[0], None


def relu_avg_pool(y: torch.Tensor, size: int) -> torch.Tensor:
    """``adaptive_avg_pool2d(relu(y), size)``, bit for bit, through the kernel where it applies: a channels-last
    bf16 CPU tensor, channels a multiple of 16, windows that tile the map (the lazy model's 28 -> 2)."""
    if (
        y.device.type == "cpu"
        and y.dim() == 4
        and y.dtype == torch.bfloat16
        and y.is_contiguous(memory_format=CL)
        and y.shape[1] % 16 == 0
        and y.shape[2] % size == 0
        and y.shape[3] % size == 0
        and avg_extension() is not None
    ):
        return _ReluAvgPool.apply(y, size)
    return F.adaptive_avg_pool2d(F.relu(y), size)


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
