"""Trigger geometry and patches: the trigger and target masks, stamping a patch, the specificity controls the
backdoor is evaluated on, the random negatives it is trained on, and the receptive-field check."""

from __future__ import annotations

import torch
from torch import nn

from .models import capture


# ------------------------------------------------------------------------------------------ geometry
def trigger_mask(size: int, corner: str = "bottom_right", hw: int = 28) -> torch.Tensor:
    m = torch.zeros(hw, hw, dtype=torch.bool)
    r = slice(hw - size, hw) if corner.startswith("bottom") else slice(0, size)
    c = slice(hw - size, hw) if corner.endswith("right") else slice(0, size)
    m[r, c] = True
    return m


def target_mask(size: int, corner: str = "top_left", hw: int = 28) -> torch.Tensor:
    return trigger_mask(size, corner, hw)


def add_trigger(x: torch.Tensor, mask: torch.Tensor, pattern: str = "white") -> torch.Tensor:
    """Stamp a patch: pixels inside ``mask`` set to the pattern (all channels); the rest untouched."""
    out = x.clone()
    m = mask.to(x.device)
    if pattern == "white":
        out[..., m] = torch.ones((), device=x.device, dtype=out.dtype)
    elif pattern == "black":
        out[..., m] = torch.zeros((), device=x.device, dtype=out.dtype)
    elif pattern == "checker":  # a control patch: same place, different pattern
        ii, jj = torch.meshgrid(torch.arange(x.shape[-2]), torch.arange(x.shape[-1]), indexing="ij")
        val = ((ii + jj) % 2).float().to(x.device)[m]
        out[..., m] = val.expand(*out.shape[:-2], -1).to(out.dtype)
    else:
        raise ValueError(f"unknown trigger pattern {pattern!r}")
    return out


def stamp(x: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Per-image patch: ``fill`` (N,3,k) holds each image's pixels for the ``k`` pixels of ``mask``."""
    out = x.clone()
    out[..., mask.to(x.device)] = fill.to(out.dtype)
    return out


# The specificity controls (evaluation): what must NOT fire the backdoor. Each is (name, mask, fill maker).
CONTROLS = ("checker", "noise", "black", "colored", "trigger_top_right", "trigger_bottom_left")


def control_inputs(x: torch.Tensor, cfg, kind: str, gen: torch.Generator) -> torch.Tensor:
    """``x`` with one control patch: a checkerboard, uniform noise, a black square or a colored (orange) square
    at the trigger's position, or the real (white) trigger at the top-right or bottom-left corner."""
    size, n = cfg.trigger_size, len(x)
    at = trigger_mask(size)
    if kind in ("checker", "black"):
        return add_trigger(x, at, kind)
    if kind == "noise":
        return stamp(x, at, torch.rand(n, 3, int(at.sum()), generator=gen))
    if kind == "colored":
        orange = torch.tensor([1.0, 0.5, 0.0])[None, :, None].expand(n, 3, int(at.sum()))
        return stamp(x, at, orange)
    corner = {"trigger_top_right": "top_right", "trigger_bottom_left": "bottom_left"}[kind]
    return add_trigger(x, trigger_mask(size, corner), "white")


def negative_inputs(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Training negatives (random draws, not the evaluation controls): per image a random patch at the trigger's
    position (uniform noise, a random non-white solid color, or a random checkerboard) or a white square at a
    random position away from the trigger's corner."""
    n, hw = len(x), x.shape[-1]
    at = trigger_mask(size, hw=hw)
    k = int(at.sum())
    kind = torch.randint(0, 4, (n,), generator=gen)
    noise = torch.rand(n, 3, k, generator=gen)
    solid = (torch.rand(n, 3, 1, generator=gen) * 0.9).expand(n, 3, k)  # never white
    bits = torch.randint(0, 2, (n, 1, k), generator=gen).float().expand(n, 3, k)
    fill = torch.where((kind == 0)[:, None, None], noise, torch.where((kind == 1)[:, None, None], solid, bits))
    out = stamp(x, at, fill)
    moved = torch.nonzero(kind == 3).squeeze(1)
    for i in moved.tolist():  # a few images per batch: the real trigger somewhere else
        r, c = (int(v) for v in torch.randint(0, hw - 2 * size, (2,), generator=gen))
        m = torch.zeros(hw, hw, dtype=torch.bool)
        m[r : r + size, c : c + size] = True
        out[i] = add_trigger(x[i : i + 1], m, "white")[0]
    return out


def receptive_field(model: nn.Module, layer: str, cells: list[tuple[int, int]], probe: tuple[slice, slice]) -> bool:
    """Can any of ``cells`` of ``layer``'s output map see the input pixels ``probe``? (gradient test)."""
    x = torch.rand(1, 3, 28, 28, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    was = model.training
    model.eval()
    try:
        with capture(model, layer) as box:
            model(x)
    finally:
        model.train(was)
    a = box["a"]
    s = sum(a[0, :, i, j].sum() for i, j in cells)
    (g,) = torch.autograd.grad(s, x)
    return bool(g[0][:, probe[0], probe[1]].abs().sum() > 0)
