"""fused.bn_relu / bn_relu_pool: BatchNorm2d in training mode + ReLU (+ 2x2 max-pool) through the C++ kernel gives
what PyTorch's modules give, bit for bit: the output, the running statistics and counter, and the gradients of the
input, the weight and the bias; and where the kernel does not apply, PyTorch's modules run."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from shortcutlab import fused

needs_bn = pytest.mark.skipif(fused.bn_extension() is None, reason="the BatchNorm kernel is not used here")
CL = torch.channels_last


def bits(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().contiguous()
    return t.view(torch.int16) if t.dtype == torch.bfloat16 else t.reshape(-1).view(torch.uint8)


def run(block, x: torch.Tensor, bn: nn.BatchNorm2d, grad_seed: int, grad_layout=CL):
    """One training-mode forward and backward of ``block`` on a copy of ``bn``: every byte it produces."""
    x = x.clone().requires_grad_(True)
    out = block(x, bn)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_seed)) * 2
    out.backward(g.to(out.dtype).contiguous(memory_format=grad_layout))
    return [bits(out), bits(x.grad), bits(bn.weight.grad), bits(bn.bias.grad)] + [bits(t) for t in bn.buffers()]


def modules(pool: bool):
    return (lambda x, bn: F.max_pool2d(F.relu(bn(x)), 2)) if pool else (lambda x, bn: F.relu(bn(x)))


def kernel(pool: bool):
    return fused.bn_relu_pool if pool else fused.bn_relu


def activation(n, c, side, seed, dtype=torch.bfloat16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, side, side, generator=g) * torch.rand(c, 1, 1, generator=g) * 4 + torch.randn(c, 1, 1)
    x.view(-1)[::13] = -0.0
    x.view(-1)[::17] = 0.0
    return x.to(dtype).contiguous(memory_format=CL)


def bn_copy(c: int, seed: int, momentum=0.1) -> tuple[nn.BatchNorm2d, nn.BatchNorm2d]:
    bn = nn.BatchNorm2d(c, momentum=momentum)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(c, generator=g))
        bn.bias.copy_(torch.randn(c, generator=g))
        bn.running_mean.copy_(torch.randn(c, generator=g))
        bn.running_var.copy_(torch.rand(c, generator=g) + 0.5)
    other = nn.BatchNorm2d(c, momentum=momentum)
    other.load_state_dict(bn.state_dict())
    return bn, other


def same(got, want) -> bool:
    return len(got) == len(want) and all(torch.equal(p, q) for p, q in zip(got, want, strict=True))


@needs_bn
@pytest.mark.parametrize("threads", [2, 1])
@pytest.mark.parametrize("pool", [True, False], ids=["pool", "relu"])
@pytest.mark.parametrize("shape", [(32, 16, 28), (32, 32, 14), (32, 64, 7), (5, 16, 9), (3, 64, 3)])
def test_bn_relu_gives_pytorchs_bytes(shape, pool, threads):
    """Even and odd numbers of rows per thread, one thread and two (the sums' order follows the split), odd sides
    (the pool's last row and column get no gradient), ±0, channel means far from zero."""
    n, c, side = shape
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for seed in range(2):
            x = activation(n, c, side, seed)
            a, b = bn_copy(c, seed)
            assert fused._bn_applies(x, a)  # the kernel runs, not the fallback
            assert same(run(kernel(pool), x, a, seed), run(modules(pool), x, b, seed))
    finally:
        torch.set_num_threads(before)


@needs_bn
def test_a_gradient_in_another_layout_takes_pytorchs_ops():
    """relu_bn's backward with an NCHW gradient: PyTorch's own ops from the saved statistics, the same bytes."""
    x = activation(8, 32, 14, 5)
    a, b = bn_copy(32, 5)
    layout = torch.contiguous_format
    assert same(run(fused.bn_relu, x, a, 5, layout), run(modules(False), x, b, 5, layout))


@needs_bn
def test_the_other_layouts_backward_masks_with_the_forwards_own_output():
    """With the gradient in NCHW (the ConvNet's last block, under its average pool) the backward runs PyTorch's ops,
    and relu's gradient mask must come from the forward's exact output: a bias that puts one value per channel at ~0
    after normalisation, where an unfused x * alpha + beta rounds to the other side of 0 for thousands of values."""
    x = activation(64, 64, 7, 0)
    a, b = bn_copy(64, 0)
    w = a.weight.detach()
    _, mean, invstd = torch.native_batch_norm(x, w, a.bias.detach(), None, None, True, 0.1, 1e-5)
    bias = -(x[0, :, 3, 3].float() - mean) * invstd * w
    with torch.no_grad():
        a.bias.copy_(bias), b.bias.copy_(bias)
    layout = torch.contiguous_format
    assert same(run(fused.bn_relu, x, a, 0, layout), run(modules(False), x, b, 0, layout))


@pytest.mark.parametrize("case", ["fp32", "eval", "cumulative_momentum", "24_channels", "nchw", "no_counter"])
def test_where_the_kernel_does_not_apply_the_modules_run(case):
    c = 24 if case == "24_channels" else 32
    x = activation(8, c, 14, 7, torch.float32 if case == "fp32" else torch.bfloat16)
    x = x.contiguous() if case == "nchw" else x
    a, b = bn_copy(c, 7, momentum=None if case == "cumulative_momentum" else 0.1)
    if case == "eval":
        a.eval(), b.eval()
    if case == "no_counter":
        a.num_batches_tracked = b.num_batches_tracked = None
    assert not fused._bn_applies(x, a)
    for pool in (True, False):
        assert same(run(kernel(pool), x, a, 7), run(modules(pool), x, b, 7))


def test_bn_kernel_loads_from_inside_no_grad_and_autocast():
    """The load-time check runs its own backward: the first call may come from a no_grad, autocast context."""
    fused.bn_extension.cache_clear()
    try:
        x = activation(8, 16, 14, 9)
        a, b = bn_copy(16, 9)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(fused.bn_relu_pool(x, a), F.max_pool2d(F.relu(b(x)), 2))
        assert same([bits(t) for t in a.buffers()], [bits(t) for t in b.buffers()])
    finally:
        fused.bn_extension.cache_clear()


def test_bn_kernel_is_built_only_where_the_cpu_has_avx512(monkeypatch):
    """Its window and backward are AVX-512 intrinsics: on another CPU no build is tried and the modules run."""
    monkeypatch.setattr(fused.native, "cpu_tag", lambda: "model name : x\nflags : fpu sse2 avx avx2 fma")
    monkeypatch.setattr(fused.native, "load", lambda *a, **k: pytest.fail("a build was tried"))
    fused.bn_extension.cache_clear()
    try:
        assert fused.bn_extension() is None
        x = activation(8, 32, 14, 3)
        a, b = bn_copy(32, 3)
        assert not fused._bn_applies(x, a)
        assert same(run(fused.bn_relu_pool, x, a, 3), run(modules(True), x, b, 3))
    finally:
        fused.bn_extension.cache_clear()
