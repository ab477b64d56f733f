"""What the neurons encode: color selectivity (CSI) of channels and hidden units, the study's neuron
analysis, activation maximisation (one shared ascent step for class visualisations, first-layer filters and
hidden units), seed consistency and intensity/spatial invariance."""

from __future__ import annotations

import torch
from torch import nn

from .data import flat_images
from .models import capture, get_module
from .optim import Adam


@torch.no_grad()
def unit_responses(model: nn.Module, layer: str | nn.Module, x: torch.Tensor, pre: bool = False) -> torch.Tensor:
    """(N, units) float32 responses of ``layer`` to images x (spatial mean for conv maps), in eval mode."""
    was = model.training
    model.eval()
    try:
        with capture(model, layer, pre) as box:
            model(x)
    finally:
        model.train(was)
    a = box["a"].float()
    return a.mean((2, 3)) if a.dim() == 4 else a


def color_selectivity(responses: torch.Tensor) -> torch.Tensor:
    """CSI = (max - mean) / (std + 1e-8) over the ten palette colors; responses (10 colors, units)."""
    r = responses.float()
    return (r.max(0).values - r.mean(0)) / (r.std(0) + 1e-8)


def channel_color_responses(model: nn.Module, layer: str, palette: torch.Tensor) -> torch.Tensor:
    """Mean activation of each channel of ``layer`` on ten flat images of the pure palette colors."""
    return unit_responses(model, layer, flat_images(palette).to(next(model.parameters()).device)).cpu()


def neuron_analysis(model: nn.Module, palette: torch.Tensor) -> dict:
    """The study's neuron analysis of the hidden layer: responses to the ten pure palette colors (flat
    images), CSI = (max - mean) / (std + 1e-8), specialists above the 75th percentile, favourite colors,
    polysemanticity = normalised entropy of the (positive) responses x 1/CSI with the study's bands."""
    r = channel_color_responses(model, model.hidden_layer, palette)  # (10 colors, units)
    csi = color_selectivity(r)
    alive = r.amax(0) > 0
    p = r.clamp_min(0) / r.clamp_min(0).sum(0, keepdim=True).clamp_min(1e-12)
    ent = -(p * torch.log(p.clamp_min(1e-12))).sum(0) / torch.log(torch.tensor(10.0))
    poly = ent / csi.clamp_min(1e-8)
    a = alive
    q75 = float(csi[a].quantile(0.75)) if a.any() else 0.0
    fav = torch.bincount(r[:, a].argmax(0), minlength=10) if a.any() else torch.zeros(10, dtype=torch.long)
    return {
        "units": int(len(csi)),
        "alive": int(a.sum()),
        "csi_gt_3": int((csi[a] > 3.0).sum()),
        "csi_mean": float(csi[a].mean()) if a.any() else 0.0,
        "csi_median": float(csi[a].median()) if a.any() else 0.0,
        "csi_p75": q75,
        "specialists": int((csi[a] > q75).sum()),
        "favourite_color_counts": fav.tolist(),
        "poly_mean": float(poly[a].mean()) if a.any() else 0.0,
        "poly_bands": {
            "monosemantic_lt_0.3": int((poly[a] < 0.3).sum()),
            "weakly_monosemantic_lt_0.7": int(((poly[a] >= 0.3) & (poly[a] < 0.7)).sum()),
            "polysemantic_ge_0.7": int((poly[a] >= 0.7).sum()),
        },
    }


def ascend(x: torch.Tensor, score, steps: int, lr: float, l2: float, tv: float) -> None:
    """The activation-maximisation step shared by every visualisation: Adam on the image ``x`` (in place) to
    maximise ``score()`` (which runs the model on ``x``) minus L2 and total-variation penalties, clamped to
    [0, 1] after every step."""
    opt = Adam([x], lr=lr)
    for _ in range(steps):
        s = score()
        t = (x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()
        loss = -s + l2 * x.pow(2).sum() + tv * t
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)


def class_visualisation(
    model: nn.Module,
    palette: torch.Tensor,
    steps: int = 300,
    lr: float = 0.05,
    l2: float = 5e-5,
    tv: float = 5e-3,
    seed: int = 0,
) -> tuple[torch.Tensor, dict]:
    """Class-logit activation maximisation (the study's recipe: mid-gray + small noise, Adam, L2 and
    total-variation penalties, clamp to [0,1]); color purity per class = cosine(mean color of the image,
    the class's palette color) x (1 - std of the pixel colors)."""
    gen = torch.Generator().manual_seed(seed)
    dev = next(model.parameters()).device
    x = (0.5 + 0.01 * torch.randn(10, 3, 28, 28, generator=gen)).to(dev).requires_grad_(True)
    was = model.training
    model.eval()
    ascend(x, lambda: model(x).float().diagonal().sum(), steps, lr, l2, tv)
    model.train(was)
    img = x.detach().float().cpu()
    mean_rgb = img.mean((2, 3))
    cos = torch.nn.functional.cosine_similarity(mean_rgb, palette.cpu().float(), dim=1)
    purity = cos * (1 - img.flatten(2).std(2).mean(1))
    return img, {str(k): float(v) for k, v in enumerate(purity)}


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def maximise_units(
    model: nn.Module,
    module: nn.Module,
    n_units: int,
    seeds: list[int],
    steps: int = 100,
    lr: float = 0.05,
    l2: float = 5e-5,
    tv: float = 5e-3,
    pre: bool = False,
) -> torch.Tensor:
    """Activation maximisation of every unit of ``module`` at once, from one random start per seed
    (uniform in [0.25, 0.75]); returns (seeds, units, 3, 28, 28). Same regularisers as the class
    visualisation; the image is clamped to [0, 1] after every Adam step."""
    dev = next(model.parameters()).device
    starts = [0.25 + 0.5 * torch.rand(n_units, 3, 28, 28, generator=torch.Generator().manual_seed(s)) for s in seeds]
    x = torch.cat(starts).to(dev).requires_grad_(True)
    units = torch.arange(n_units, device=dev).repeat(len(seeds))
    was = model.training
    model.eval()

    def score():
        model(x)
        a = box["a"].float()
        a = a.mean((2, 3)) if a.dim() == 4 else a
        return a.gather(1, units[:, None]).sum()

    try:
        with capture(model, module, pre) as box:
            ascend(x, score, steps, lr, l2, tv)
    finally:
        model.train(was)
    return x.detach().float().cpu().view(len(seeds), n_units, 3, 28, 28)


def seed_consistency(imgs: torch.Tensor) -> torch.Tensor:
    """Per unit: cosine similarity of the (mean-centred) activation-maximisation images of two seeds."""
    a, b = (v.flatten(1) - v.flatten(1).mean(1, keepdim=True) for v in (imgs[0], imgs[1]))
    return torch.nn.functional.cosine_similarity(a, b, dim=1)


def _cv(r: torch.Tensor) -> torch.Tensor:
    """Coefficient of variation along dim 0 (std / |mean|), per unit; NaN where the mean is ~0."""
    m = r.mean(0)
    return torch.where(m.abs() > 1e-6, r.std(0) / m.abs().clamp_min(1e-6), torch.full_like(m, float("nan")))


def invariance(
    model: nn.Module,
    module: nn.Module,
    palette: torch.Tensor,
    fav: torch.Tensor,
    pre: bool,
    intensities=(0.25, 0.5, 0.75, 1.0),
    patch: int = 10,
) -> dict:
    """Intensity invariance: CV of each unit's response to its favourite palette color as a flat image at
    four intensities. Spatial invariance: CV of its response to a ``patch``-pixel square of that color on
    black at nine positions (3 x 3 grid). Low CV = invariant. Means over units with a non-zero mean."""
    dev = next(model.parameters()).device
    pal = palette.float().to(dev)
    flat = torch.cat([flat_images(pal * s) for s in intensities])  # (4*10, 3, 28, 28)
    r = unit_responses(model, module, flat, pre).view(len(intensities), 10, -1)  # (intensity, color, unit)
    units = torch.arange(r.shape[2])
    r_int = r[:, fav.to(r.device), units]  # (intensity, unit)
    offs = [0, (28 - patch) // 2, 28 - patch]
    imgs = []
    for c in range(10):
        for oy in offs:
            for ox in offs:
                im = torch.zeros(3, 28, 28, device=dev)
                im[:, oy : oy + patch, ox : ox + patch] = pal[c][:, None, None]
                imgs.append(im)
    rs = unit_responses(model, module, torch.stack(imgs), pre).view(10, 9, -1)  # (color, position, unit)
    r_pos = rs[fav.to(rs.device), :, units].T  # (position, unit)
    ci, cp = _cv(r_int), _cv(r_pos)
    return {
        "intensity_cv_mean": float(ci.nanmean()),
        "spatial_cv_mean": float(cp.nanmean()),
        "intensity_cv_units": int((~ci.isnan()).sum()),
        "spatial_cv_units": int((~cp.isnan()).sum()),
    }


def neuron_deep_dive(model: nn.Module, palette: torch.Tensor, seeds=(0, 1), steps: int = 50) -> tuple[dict, dict]:
    """The rest of the study's Tasks 2-3 for any model: first-layer filters (weights, response matrix to
    the pure palette colors, activation maximisation per filter) and hidden units (color-response
    matrix, CSI, seed-consistency of per-unit activation maximisation, intensity and spatial invariance).
    Returns (metrics, arrays for the figure)."""
    dev = next(model.parameters()).device
    pal = palette.float().to(dev)
    conv = first_conv(model)
    r1 = unit_responses(model, conv, flat_images(pal))  # (10 colors, filters), pre-activation
    hidden = get_module(model, model.hidden_layer)
    pre = isinstance(hidden, nn.ReLU)  # maximise a ReLU's pre-activation
    rh = unit_responses(model, hidden, flat_images(pal))  # (10 colors, units), as analysed
    csi1, csih = color_selectivity(r1), color_selectivity(rh)
    am1 = maximise_units(model, conv, conv.out_channels, list(seeds[:1]), steps)[0]
    amh = maximise_units(model, hidden, rh.shape[1], list(seeds), steps, pre=pre)
    cons = seed_consistency(amh)
    fav = rh.argmax(0)
    color_of = am1.mean((2, 3))  # mean RGB of each filter's image
    metrics = {
        "first_layer": {
            "filters": int(conv.out_channels),
            "csi_mean": float(csi1.mean()),
            "favourite_color_counts": torch.bincount(r1.argmax(0), minlength=10).tolist(),
            "actmax_saturation_mean": float((color_of.amax(1) - color_of.amin(1)).mean()),
        },
        "hidden": {
            "units": int(rh.shape[1]),
            "actmax_seed_consistency_mean": float(cons.mean()),
            "actmax_seed_consistency_median": float(cons.median()),
            "actmax_steps": steps,
            **invariance(model, hidden, palette, fav, pre),
        },
    }
    arrays = {
        "first_weights": conv.weight.detach().float().cpu(),
        "first_responses": r1.cpu(),
        "first_actmax": am1,
        "hidden_responses": rh.cpu(),
        "hidden_csi": csih.cpu(),
        "hidden_actmax": amh[0],
        "consistency": cons,
    }
    return metrics, arrays
