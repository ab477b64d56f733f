"""The explain analysis of one model: every attribution method scored by every trust metric."""

from __future__ import annotations

import time

import torch
from torch import nn

from . import trust
from .attribution import IntegratedGradients, applicable, attribute_batched, make
from .data import Split, flat_images
from .models import build, capture, get_module, unit_responses
from .optim import Adam
from .runtime import Runtime
from .training import predict


def method_kwargs(name: str, cfg) -> dict:
    if name == "integrated_gradients":
        return {"steps": cfg.ig_steps}
    if name == "smoothgrad":
        return {"samples": cfg.smoothgrad_samples, "sigma": cfg.smoothgrad_sigma, "seed": cfg.seed}
    return {}


def fixed_subset(split: Split, n: int, seed: int) -> Split:
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n]
    return split.subset(idx.to(split.x.device))


def color_share(model: nn.Module, x: torch.Tensor, target: torch.Tensor, cfg) -> dict:
    """Share of the evidence that is color: IG from the image's own grayscale version over IG from black
    (by completeness: [f(x) - f(gray x)] / [f(x) - f(0)] for the target logit), clipped to [0, 1]."""
    ig = IntegratedGradients(model, steps=cfg.ig_steps)
    tot_black, tot_gray = [], []
    for s in range(0, len(x), cfg.batch_size):
        xb, tb = x[s : s + cfg.batch_size], target[s : s + cfg.batch_size]
        tot_black.append(ig.attribute(xb, tb).sum((1, 2, 3)).detach())
        tot_gray.append(ig.attribute(xb, tb, baselines=trust.grayscale(xb)).sum((1, 2, 3)).detach())
    b, g = torch.cat(tot_black), torch.cat(tot_gray)
    ok = b.abs() > 1e-6
    share = (g[ok] / b[ok]).clamp(0, 1)
    return {
        "mean": float(share.mean()) if ok.any() else 0.0,
        "median": float(share.median()) if ok.any() else 0.0,
        "n": int(ok.sum()),
    }


def neuron_analysis(model: nn.Module, palette: torch.Tensor) -> dict:
    """The study's neuron analysis of the hidden layer: responses to the ten pure palette colors (flat
    images), CSI = (max - mean) / (std + 1e-8), specialists above the 75th percentile, favourite colors,
    polysemanticity = normalised entropy of the (positive) responses x 1/CSI with the study's bands."""
    from .debias import channel_color_responses, color_selectivity

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


def analyse(model: nn.Module, arch: str, arch_kwargs: dict, splits: dict[str, Split], cfg, rt: Runtime) -> dict:
    """Metrics per split x method. The sanity check compares with the same architecture re-initialised
    (on the first ``cfg.sanity_images`` images). Runs under the runtime's autocast (bf16 where native)."""
    with rt.autocast():
        out = _analyse(model, arch, arch_kwargs, splits, cfg, rt)
    out["neurons"] = neuron_analysis(model, next(iter(splits.values())).palette)
    return out


def _analyse(model, arch, arch_kwargs, splits, cfg, rt):
    torch.manual_seed(cfg.seed + 1)
    rand_model = rt.prepare(build(arch, **arch_kwargs)).eval()
    out: dict = {}
    for split_name, split in splits.items():
        sub = fixed_subset(split, cfg.n_images, cfg.seed)
        x = rt.input(sub.images().to(rt.device))
        top2 = predict(model, x, rt).topk(2, dim=1).indices
        pred, runner_up = top2[:, 0], top2[:, 1]
        gray = sub.gray.float() / 255.0
        res = {"color_share": color_share(model, x, pred, cfg), "n_images": len(x)}
        wrong = pred != sub.y
        for name in applicable(cfg.methods, model):
            t0 = time.perf_counter()
            meth = make(name, model, **method_kwargs(name, cfg))
            maps = attribute_batched(meth, x, pred, cfg.batch_size)
            secs = time.perf_counter() - t0
            ns = cfg.sanity_images
            rmaps = attribute_batched(
                make(name, rand_model, **method_kwargs(name, cfg)), x[:ns], pred[:ns], cfg.batch_size
            )
            dele, ins = trust.deletion_insertion(model, x, maps, pred, rt, cfg.deletion_steps)
            fals = trust.falsification(model, x, maps, pred, rt, cfg.falsification_k, cfg.falsification_draws, cfg.seed)
            other = attribute_batched(meth, x[:ns], runner_up[:ns], cfg.batch_size)
            r = {
                "concentration_ratio": float(trust.concentration_ratio(maps).mean()),
                "class_identical_rate": float(trust.identical(maps[:ns], other).float().mean()),
                "foreground_mass": float(trust.foreground_mass(maps, gray, cfg.fg_threshold).mean()),
                "degenerate_rate": float(trust.degenerate(maps, cfg.degenerate_cv).float().mean()),
                "deletion_auc": float(dele.mean()),
                "insertion_auc": float(ins.mean()),
                "falsification_rate": float(fals.float().mean()),
                "sanity_spearman": float(trust.spearman(maps[:ns], rmaps).mean()),
                "maps_per_s": len(x) / secs,
            }
            if wrong.any():
                mt = attribute_batched(meth, x[wrong], sub.y[wrong], cfg.batch_size)
                r["class_contrast"] = float(trust.class_contrast(maps[wrong], mt).mean())
            r["class_contrast_n"] = int(wrong.sum())
            res[name] = r
        out[split_name] = res
    return out


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
    opt = Adam([x], lr=lr)
    was = model.training
    model.eval()
    for _ in range(steps):
        logits = model(x).float()
        t = (x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()
        loss = -logits.diagonal().sum() + l2 * x.pow(2).sum() + tv * t
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    model.train(was)
    img = x.detach().float().cpu()
    mean_rgb = img.mean((2, 3))
    cos = torch.nn.functional.cosine_similarity(mean_rgb, palette.cpu().float(), dim=1)
    purity = cos * (1 - img.flatten(2).std(2).mean(1))
    return img, {str(k): float(v) for k, v in enumerate(purity)}


def probes(model: nn.Module, split: Split, rt: Runtime) -> tuple[dict, list, list]:
    """Grad-CAM for the predicted and the true class on the study's hand-made conflicting images (0 in
    green, 1 in red, 2 in yellow, 5 in magenta: palette colors 1, 0, 3, 4), with concentration ratios."""
    from .attribution import GradCAM
    from .data import paint

    cases = [(0, 1), (1, 0), (2, 3), (5, 4)]
    imgs, labels = [], []
    for digit, color in cases:
        g = split.gray[split.y == digit][:1]
        imgs.append(paint(g, split.palette[color]).to(rt.device))
        labels.append(digit)
    x = torch.cat(imgs)
    y = torch.tensor(labels, device=x.device)
    pred = predict(model, x, rt).argmax(1)
    cam = GradCAM(model)
    mp, mt = cam.attribute(x, pred).detach(), cam.attribute(x, y).detach()
    crp, crt = trust.concentration_ratio(mp), trust.concentration_ratio(mt)
    out = {
        f"{d}_in_color{c}": {
            "pred": int(pred[i]),
            "concentration_pred": float(crp[i]),
            "concentration_true": float(crt[i]),
        }
        for i, (d, c) in enumerate(cases)
    }
    grid = []
    titles = []
    for i, (d, c) in enumerate(cases):
        grid += [x[i].cpu(), mp[i].cpu(), mt[i].cpu()]
        titles += [f"{d} in color {c}", f"CAM pred {int(pred[i])}", f"CAM true {d}"]
    return out, grid, titles


# ------------------------------------------------------------------------------------------ neurons, deeper
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
    opt = Adam([x], lr=lr)
    was = model.training
    model.eval()
    try:
        with capture(model, module, pre) as box:
            for _ in range(steps):
                model(x)
                a = box["a"].float()
                a = a.mean((2, 3)) if a.dim() == 4 else a
                t = (x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()
                loss = -a.gather(1, units[:, None]).sum() + l2 * x.pow(2).sum() + tv * t
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    x.clamp_(0, 1)
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


def success_failure_probes(model: nn.Module, split: Split, rt: Runtime, n: int = 100) -> tuple[dict, list, list]:
    """Grad-CAM of the predicted and the true class on up to ``n`` hard-test successes and ``n`` failures,
    with the concentration ratio of each (means), and a 4 + 4 image grid (image, CAM pred, CAM true)."""
    from .attribution import GradCAM

    x_all = split.images(slice(0, min(len(split), 20 * n))).to(rt.device)
    y_all = split.y[: len(x_all)]
    pred_all = predict(model, x_all, rt).argmax(1)
    cam = GradCAM(model)
    out, grid, titles = {}, [], []
    for kind, sel in (("successes", pred_all == y_all), ("failures", pred_all != y_all)):
        idx = torch.nonzero(sel).squeeze(1)[:n]
        out[kind] = {"n": int(len(idx))}
        if not len(idx):
            continue
        x, y, p = x_all[idx], y_all[idx], pred_all[idx]
        mp, mt = cam.attribute(rt.input(x), p).detach(), cam.attribute(rt.input(x), y).detach()
        out[kind] |= {
            "concentration_pred": float(trust.concentration_ratio(mp).mean()),
            "concentration_true": float(trust.concentration_ratio(mt).mean()),
            "degenerate_rate_pred": float(trust.degenerate(mp).float().mean()),
        }
        for i in range(min(4, len(idx))):
            grid += [x[i].float().cpu(), mp[i].float().cpu(), mt[i].float().cpu()]
            label = "failure" if kind == "failures" else "success"
            titles += [f"{label}: y={int(y[i])} pred={int(p[i])}", f"CAM pred {int(p[i])}", f"CAM true {int(y[i])}"]
    return out, grid, titles


def neuron_deep_dive(model: nn.Module, palette: torch.Tensor, seeds=(0, 1), steps: int = 50) -> tuple[dict, dict]:
    """The rest of the study's Tasks 2-3 for any model: first-layer filters (weights, response matrix to
    the pure palette colors, activation maximisation per filter) and hidden units (color-response
    matrix, CSI, seed-consistency of per-unit activation maximisation, intensity and spatial invariance).
    Returns (metrics, arrays for the figure)."""
    from .debias import color_selectivity

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
