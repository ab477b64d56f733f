"""How far to trust an attribution map: scores for any method's (N,H,W) maps.

All functions are batched over images; maps are float tensors, images (N,3,H,W) in [0,1].
"""

from __future__ import annotations

import torch
from torch import nn

from .runtime import Runtime


def positive(maps: torch.Tensor) -> torch.Tensor:
    return maps.clamp_min(0).flatten(1)


def concentration_ratio(maps: torch.Tensor, mass: float = 0.8) -> torch.Tensor:
    """The study's score: fraction of pixels that hold ``mass`` of the positive attribution (per map;
    1.0 for an all-zero map, where no pixel holds anything)."""
    p = positive(maps)
    total = p.sum(1, keepdim=True)
    srt = p.sort(1, descending=True).values.cumsum(1)
    k = (srt < mass * total).sum(1) + 1
    return torch.where(total.squeeze(1) > 0, k.float() / p.shape[1], torch.ones_like(k, dtype=torch.float))


def foreground_mass(maps: torch.Tensor, gray: torch.Tensor, threshold: float) -> torch.Tensor:
    """Share of positive attribution on the digit's own stroke pixels (gray > threshold, gray in [0,1])."""
    p = positive(maps)
    fg = (gray.flatten(1).float() > threshold).float()
    total = p.sum(1)
    return torch.where(total > 0, (p * fg).sum(1) / total.clamp_min(1e-12), torch.zeros_like(total))


def degenerate(maps: torch.Tensor, cv_threshold: float = 0.05, eps: float = 1e-8) -> torch.Tensor:
    """True for maps that are all-zero (max |m| <= eps) or near-uniform (std/mean of |m| < cv_threshold)."""
    a = maps.flatten(1).abs().float()
    mx, mean, std = a.amax(1), a.mean(1), a.std(1)
    return (mx <= eps) | (std < cv_threshold * mean.clamp_min(eps))


def identical(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-3) -> torch.Tensor:
    """Per image: True when two maps (e.g. for two different classes) are the same after per-map min-max
    normalisation (max |difference| < ``tol``). Two all-zero maps are identical."""
    return (normalise(a) - normalise(b)).flatten(1).abs().amax(1) < tol


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Per-map min-max normalisation to [0,1] (a constant map becomes all zeros)."""
    a = maps.flatten(1).float()
    lo, hi = a.amin(1, keepdim=True), a.amax(1, keepdim=True)
    return ((a - lo) / (hi - lo).clamp_min(1e-12)).view_as(maps)


def class_contrast(maps_pred: torch.Tensor, maps_true: torch.Tensor) -> torch.Tensor:
    """Mean |map(predicted) - map(true)| after per-map normalisation, per image."""
    return (normalise(maps_pred) - normalise(maps_true)).abs().flatten(1).mean(1)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row Spearman rank correlation of two (N,...) tensors (ties broken by order)."""

    def ranks(x):
        x = x.flatten(1).float()
        return x.argsort(1).argsort(1).float()

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp_min(1e-12)


@torch.no_grad()
def _target_prob(model: nn.Module, x: torch.Tensor, target: torch.Tensor, rt: Runtime, chunk: int = 512):
    out = []
    for s in range(0, len(x), chunk):
        with rt.autocast():
            logits = model(rt.input(x[s : s + chunk])).float()
        out.append(torch.softmax(logits, 1).gather(1, target[s : s + chunk, None]).squeeze(1))
    return torch.cat(out)


def endpoints(model, x, target, rt) -> tuple[torch.Tensor, torch.Tensor]:
    """The target probability of the whole image and of black: the ends of every deletion and insertion curve
    on these images, whatever the map (deletion runs from the image to black, insertion the other way), and the
    falsification test's unmasked probability. Computed once, shared by every attribution method."""
    return _target_prob(model, x * 1.0, target, rt), _target_prob(model, x * 0.0, target, rt)


def deletion_insertion(model, x, maps, target, rt, steps: int = 10, ends=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion and insertion AUC per image: pixels (all channels) removed to / revealed from black in
    attribution order, in ``steps`` equal fractions; the AUC of the target probability (trapezoid). ``ends``:
    :func:`endpoints` for these images and targets, if already computed: only the ``steps - 1`` inner points
    depend on the map. (A per-image output can depend on the batch it is computed in, by the last bit of an
    fp32 matmul; under bf16 autocast the 17 analysed models gave the same bytes in any batch, session 17.)"""
    n, _, h, w = x.shape
    p_x, p_0 = endpoints(model, x, target, rt) if ends is None else ends
    order = maps.flatten(1).argsort(1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w, device=x.device).expand(n, -1))
    fracs = torch.linspace(0, 1, steps + 1, device=x.device)[1:-1]
    kept = (rank.unsqueeze(0) >= (fracs * h * w).view(-1, 1, 1)).view(steps - 1, n, 1, h, w).float()
    dele = (x.unsqueeze(0) * kept).reshape(-1, *x.shape[1:])
    ins = (x.unsqueeze(0) * (1 - kept)).reshape(-1, *x.shape[1:])
    t = target.repeat(steps - 1)
    inner = [_target_prob(model, z, t, rt).view(steps - 1, n) for z in (dele, ins)] if steps > 1 else [p_x[:0]] * 2
    pd = torch.cat([p_x[None], inner[0], p_0[None]])
    pi = torch.cat([p_0[None], inner[1], p_x[None]])
    return torch.trapezoid(pd, dx=1 / steps, dim=0), torch.trapezoid(pi, dx=1 / steps, dim=0)


def falsification(model, x, maps, target, rt, k: float = 0.1, draws: int = 3, seed: int = 0, p0=None) -> torch.Tensor:
    """Per image: True when removing the top-k% attributed pixels lowers the target probability *less*
    than removing k% random pixels (mean over ``draws``) - the map fails a simple falsification test.
    ``p0``: the unmasked target probability (:func:`endpoints`' first), if already computed."""
    n, _, h, w = x.shape
    m = max(1, round(k * h * w))
    p0 = _target_prob(model, x, target, rt) if p0 is None else p0
    top = maps.flatten(1).topk(m, 1).indices
    mask = torch.ones(n, h * w, device=x.device).scatter_(1, top, 0.0).view(n, 1, h, w)
    drop_top = p0 - _target_prob(model, x * mask, target, rt)
    gen = torch.Generator().manual_seed(seed)
    drops = []
    for _ in range(draws):
        rnd = torch.rand(n, h * w, generator=gen).to(x.device).topk(m, 1).indices
        mask = torch.ones(n, h * w, device=x.device).scatter_(1, rnd, 0.0).view(n, 1, h, w)
        drops.append(p0 - _target_prob(model, x * mask, target, rt))
    return drop_top < torch.stack(drops).mean(0)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """The image's own luminance-preserving grayscale version (ITU-R 601 weights), as 3 channels."""
    lum = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return lum.expand_as(x).contiguous()
