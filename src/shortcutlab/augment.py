"""Batched per-sample color jitter (the color-consistency objective's augmentation): RGB <-> HSV on whole
batches, one random draw per sample, no Python per image.

On a CPU the arithmetic runs in a C++ kernel (``kernels/color_jitter.cpp``, built by ``native.py``): the same
fp32 operations in the same order, one rounding each, so the same bits as the PyTorch operators below
(tests/test_jitter.py), in two passes over the batch instead of ~60 (6.6 -> 1.05 ms for 256 images; a third of
the two-conv consistency recipe's step; benchmarks/README.md). Anything else (a GPU, no compiler,
``SHORTCUTLAB_FUSED=0``) takes the operators."""

from __future__ import annotations

from functools import cache

import torch

from . import native

SOURCE = native.KERNELS / "color_jitter.cpp"
LUMA = (0.299, 0.587, 0.114)


@cache
def extension():
    """The compiled kernel, or None. No contraction of multiply-adds (each PyTorch operator rounds once);
    -fno-trapping-math lets the compiler vectorise the selects without changing a value."""
    flags = ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-trapping-math", "-mprefer-vector-width=512"]
    return native.load(SOURCE, flags + native.native_flags())


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """Batched RGB -> HSV for (N,3,H,W) in [0,1] (h in [0,1))."""
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(1), x.amin(1)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    d = delta.clamp_min(1e-12)
    h = torch.where(maxc == r, ((g - b) / d) % 6, torch.where(maxc == g, (b - r) / d + 2, (r - g) / d + 4))
    h = torch.where(delta > 0, h / 6.0, torch.zeros_like(h)) % 1.0
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Batched HSV -> RGB: channel n in (r, g, b) is v - v*s*clamp(min(k, 4 - k), 0, 1) with
    k = (5, 3, 1)[n] + 6h mod 6 (branch-free form of the sextant table)."""
    h, s, v = x.unbind(1)
    k = (torch.tensor([5.0, 3.0, 1.0], device=x.device)[None, :, None, None] + 6 * h.unsqueeze(1)) % 6
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * torch.minimum(k, 4 - k).clamp(0, 1)


def color_jitter(
    x: torch.Tensor,
    gen: torch.Generator,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
    extreme_frac: float = 0.0,
) -> torch.Tensor:
    """Per-sample color jitter on a whole batch (N,3,H,W) in [0,1], one random draw per sample.

    Factors are drawn uniformly from [max(0, 1-s), 1+s] (hue shift from [-hue, hue] of a full turn); a
    fraction ``extreme_frac`` of the samples gets the extreme setting (brightness/contrast/saturation in
    [0, 2], hue in [-0.5, 0.5]). Applied in torchvision's ColorJitter order (brightness, contrast,
    saturation, hue; hue shifted in HSV), vectorised over the batch."""
    n, dev = x.shape[0], x.device

    def u(lo, hi):
        return (torch.rand(n, generator=gen) * (hi - lo) + lo).to(dev)

    extreme = (torch.rand(n, generator=gen) < extreme_frac).to(dev)

    def factor(s):
        return torch.where(extreme, u(0.0, 2.0), u(max(0.0, 1 - s), 1 + s))[:, None, None, None]

    b, c, s = factor(brightness), factor(contrast), factor(saturation)
    h = torch.where(extreme, u(-0.5, 0.5), u(-hue, hue))
    x = x.float()
    if (
        x.device.type == "cpu"
        and x.dim() == 4
        and x.shape[1] == 3
        and not native.compiling()
        and extension() is not None
    ):
        return _jitter_kernel(x, b, c, s, h)
    return jitter_ops(x, b, c, s, h)


def jitter_ops(x: torch.Tensor, b, c, s, h) -> torch.Tensor:
    """The jitter in PyTorch operators: brightness, contrast and saturation factors (N,1,1,1), hue shifts (N,)."""
    dev = x.device
    x = (x * b).clamp(0, 1)
    lum = (x * torch.tensor(LUMA, device=dev)[:, None, None]).sum(1, keepdim=True)
    x = ((x - lum.mean((2, 3), keepdim=True)) * c + lum.mean((2, 3), keepdim=True)).clamp(0, 1)
    lum = (x * torch.tensor(LUMA, device=dev)[:, None, None]).sum(1, keepdim=True)
    x = (lum + (x - lum) * s).clamp(0, 1)
    hsv = rgb_to_hsv(x)
    hsv = torch.stack([(hsv[:, 0] + h[:, None, None]) % 1.0, hsv[:, 1], hsv[:, 2]], 1)
    return hsv_to_rgb(hsv).clamp(0, 1)


def _jitter_kernel(x: torch.Tensor, b, c, s, h) -> torch.Tensor:
    """The same in two kernel passes; each image's luminance mean between them is PyTorch's own reduction."""
    ext, w = extension(), torch.tensor(LUMA)
    x1, lum = ext.brightness(x.contiguous(), b.reshape(-1).contiguous(), w)
    mean = lum.mean((2, 3), keepdim=True)
    return ext.rest(x1, mean.reshape(-1).contiguous(), c.reshape(-1).contiguous(), s.reshape(-1).contiguous(), h, w)
