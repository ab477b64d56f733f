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
its fused path applies it). The extension is compiled once per machine (``native.py``: ≈ 6 s, cached, keyed by the
CPU's flags, the torch installation, the source and the compiler flags: it is built for the CPU it runs on, and
every checkout of one environment shares the build). Second derivatives through it are not implemented (an error,
never a wrong value); the one caller that needs them, Grad-CAM's differentiable mode, hooks the model and so takes
PyTorch's path.

The lazy model's ``adaptive_avg_pool2d(relu(y), 2)`` gets the same treatment (``kernels/relu_avg_pool.cpp``,
:func:`relu_avg_pool`; session 24): bf16, channels-last, 16k channels, windows that tile the map. Its rules are
arithmetic (fp32 window sums divided by the window size; the backward's division rounded once for a channels-last
gradient, per dimension for an NCHW one, as PyTorch's two kernels do), so the extension is checked against
PyTorch's pair on a probe when it loads and is not used where they disagree.

The ConvNet's blocks, BatchNorm2d in training mode + ReLU (+ 2x2 max-pool), get one more (``kernels/bn_relu.cpp``,
:func:`bn_relu`, :func:`bn_relu_pool`; sessions 25-26): bf16 channels-last activations with 16, 32 or 64 channels and
fp32 parameters, as bf16 autocast trains them. PyTorch's own sequence writes the normalised activation, reads it for
the ReLU (and the pool), and backward writes and rereads its gradient; the kernel does neither. BatchNorm's batch
statistics are sums whose order decides their last bits, so the kernel sums in PyTorch's order (the rows split into
one contiguous chunk per thread, as its ``parallel_for`` splits them, the chunks added in order) and computes the
running statistics, the normalisation and every gradient with PyTorch's operations in PyTorch's precision (its
source: ATen's ``batch_norm_kernel.cpp`` and ``Normalization.cpp``). It too is checked against PyTorch's modules on
a probe when it loads (every channel count, both block kinds, forward, running statistics and gradients) and not
used where they disagree; eval-mode BatchNorm (attacks, maps) keeps PyTorch's path. It is built only where PyTorch
runs its AVX-512 kernels and the CPU has AVX-512 (the pooled window and the backward are AVX-512 intrinsics); ConvNet
training is 1.17-1.26x faster with it (``benchmarks/bench_bn_relu.py``)."""

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
        not native.compiling()
        and y.device.type == "cpu"
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
    if not native.compiling() and supported(y) and extension() is not None:
        return _ReluPool.apply(y)
    return F.max_pool2d(F.relu(y), 2)


class _GradChannelsLast(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g.contiguous(memory_format=CL)


def grad_channels_last(x: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """``x`` unchanged; its gradient handed back channels-last where no hook watches ``model`` (session 28). A global
    average pool's backward (``mean``'s) writes an NCHW gradient into a channels-last activation. Under it, relu's
    threshold backward reads one operand channels-last and one not (≈ 6x slower than both channels-last), and in
    training the ConvNet's last BatchNorm + ReLU block cannot use the kernel's backward. The bytes stay: threshold
    backward writes its output in the layout of relu's output (its first input), channels-last either way, with the
    same values, and BatchNorm's backward on that channels-last gradient is what the kernel reproduces (checked when
    it loads). ConvNet training step 23.5 -> 20.2 ms, its eval-mode input gradient 31.6 -> 29.1 ms (batch 256/500);
    the attention CNN's pooled features take it too (their two gradients, from the scorer and the attention pool,
    are then added channels-last: one addition, the same in either order). ``benchmarks/bench_grad_layout.py``
    measures both, off and on. Not where a hook watches the model: a hook that reads the gradient at a block's output
    (Grad-CAM++ and LayerCAM on the shape CNN's ``block3``, when it was routed too) gets it channels-last, and its
    own reductions over it sum in another order (11 explain metrics changed in their last bits at full size)."""
    layout = x.dim() == 4 and x.is_contiguous(memory_format=CL) and not x.is_contiguous()
    if layout and x.requires_grad and plain(model):
        return _GradChannelsLast.apply(x)
    return x


def plain(model: nn.Module, own=(), calls=()) -> bool:
    """True when no hook watches any of the model's modules (nor a global module hook): then a forward may
    skip calling the ReLU, MaxPool and BatchNorm modules it fuses. Any hook, e.g. Grad-CAM's, gives the modules'
    path, except the forward hooks in ``own`` (the model's own, neuron suppression, which its fused path applies
    itself) and any hook on the submodules named in ``calls`` or inside them: the ones the fused path still calls as
    modules (a pooling head, the classifier), whose hooks fire there as usual and see the same values."""
    from torch.nn.modules import module as m

    if (
        m._global_forward_hooks
        or m._global_forward_pre_hooks
        or m._global_backward_hooks
        or m._global_backward_pre_hooks
    ):
        return False
    called = {id(sub) for name in calls for sub in model.get_submodule(name).modules()}
    return not any(
        any(h not in own for h in mod._forward_hooks.values())
        or mod._forward_pre_hooks
        or mod._backward_hooks
        or mod._backward_pre_hooks
        for mod in model.modules()
        if id(mod) not in called
    )


BN_SOURCE = native.KERNELS / "bn_relu.cpp"
BN_CHANNELS = (16, 32, 64)


@cache
def bn_extension():
    """The BatchNorm + ReLU (+ max-pool) kernel, or None; checked against PyTorch's modules on a probe when it loads.
    Only on a CPU where PyTorch runs its AVX-512 kernels (the ones whose arithmetic it reproduces) and the compiler
    can target AVX-512 (its window and backward are written in AVX-512 intrinsics); elsewhere the modules run."""
    if not _avx512():
        return None
    flags = ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-trapping-math", "-mprefer-vector-width=512"]
    ext = native.load(BN_SOURCE, flags + native.native_flags())
    if ext is None:
        return None
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast("cpu", enabled=False):
        ok = all(_bn_agrees(ext, c, pool, n, s) for c in BN_CHANNELS for pool in (True, False) for n, s in _BN_PROBES)
    if not ok:
        warnings.warn("shortcutlab.fused: bn_relu.cpp disagrees with PyTorch here; its ops used", stacklevel=2)
        return None
    return ext


def _avx512() -> bool:
    flags = native.cpu_tag().split()
    return torch.backends.cpu.get_cpu_capability() == "AVX512" and {"avx512f", "avx512bw"} <= set(flags)


_BN_PROBES = ((8, 14), (3, 7))  # (batch, side): an even and an odd number of rows per thread


def _bn_agrees(ext, c: int, pool: bool, n: int, side: int) -> bool:
    g = torch.Generator().manual_seed(c + side)
    x = (torch.randn(n, c, side, side, generator=g) * 3 + 0.5).to(torch.bfloat16)
    x.view(-1)[::11] = -0.0
    x = x.contiguous(memory_format=CL)
    w, b = torch.randn(c, generator=g), torch.randn(c, generator=g)
    stats = [torch.randn(c, generator=g), torch.rand(c, generator=g) + 0.5]
    mine = [t.clone() for t in stats]
    ref = x.detach().requires_grad_(True)
    wr, br = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
    y = F.relu(F.batch_norm(ref, *stats, wr, br, True, 0.1, 1e-5))
    y = F.max_pool2d(y, 2) if pool else y
    gout = torch.randn(y.shape, generator=g).to(torch.bfloat16).contiguous(memory_format=CL)
    y.backward(gout)
    out, code, mean, invstd = ext.forward(x, w, b, *mine, 0.1, 1e-5, pool)
    dx, dw, db = ext.backward(gout, x, code, w, b, mean, invstd)
    pairs = [(out, y), (dx, ref.grad), (mine[0], stats[0]), (mine[1], stats[1]), (dw, wr.grad), (db, br.grad)]
    return all(torch.equal(_raw(a), _raw(r)) for a, r in pairs)


def _raw(t: torch.Tensor) -> torch.Tensor:
    return _bits(t) if t.dtype == torch.bfloat16 else t.detach().contiguous().view(torch.int32)


def _bn_applies(x: torch.Tensor, bn: nn.BatchNorm2d) -> bool:
    return (
        not native.compiling()
        and bn.training
        and bn.track_running_stats
        and bn.affine
        and bn.momentum is not None
        and bn.running_mean is not None
        and bn.num_batches_tracked is not None
        and x.device.type == "cpu"
        and x.dim() == 4
        and x.dtype == torch.bfloat16
        and x.is_contiguous(memory_format=CL)
        and x.shape[1] in BN_CHANNELS
        and x.shape[0] * x.shape[2] * x.shape[3] > torch.get_num_threads()
        and bn.weight.dtype == bn.running_mean.dtype == torch.float32
        and bn_extension() is not None
    )


class _BnRelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, running_mean, running_var, momentum, eps, pool):
        out, code, mean, invstd = bn_extension().forward(x, w, b, running_mean, running_var, momentum, eps, pool)
        ctx.save_for_backward(x, code, w, b, mean, invstd)
        ctx.eps = eps
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x, code, w, b, mean, invstd = ctx.saved_tensors
        if code is not None:  # as relu_pool's backward: the pooled gradient made channels-last first
            g = g.contiguous(memory_format=CL)
        if g.dtype == torch.bfloat16 and g.is_contiguous(memory_format=CL):
            dx, dw, db = bn_extension().backward(g, x, code, w, b, mean, invstd)
        else:  # PyTorch's own backward ops (they follow the gradient's layout), on the forward's exact relu output
            dy = torch.ops.aten.threshold_backward(g, bn_extension().relu_of(x, w, b, mean, invstd), 0)
            dx, dw, db = torch.ops.aten.native_batch_norm_backward(
                dy, x, w, None, None, mean, invstd, True, ctx.eps, [True, True, True]
            )
        return dx, dw, db, None, None, None, None, None


def _bn_block(x: torch.Tensor, bn: nn.BatchNorm2d, pool: bool) -> torch.Tensor:
    bn.num_batches_tracked.add_(1)  # what the module's forward does in training mode
    return _BnRelu.apply(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.momentum, bn.eps, pool)


def bn_relu(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """``relu(bn(x))``, bit for bit (running statistics included), through the kernel where it applies."""
    return _bn_block(x, bn, False) if _bn_applies(x, bn) else F.relu(bn(x))


def bn_relu_pool(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """``max_pool2d(relu(bn(x)), 2)``, bit for bit, through the kernel where it applies (else :func:`relu_pool`)."""
    if _bn_applies(x, bn) and x.shape[2] >= 2 and x.shape[3] >= 2:
        return _bn_block(x, bn, True)
    return relu_pool(bn(x))
