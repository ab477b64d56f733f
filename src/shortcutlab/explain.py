"""The explain analysis of one model: every attribution method scored by every trust metric."""

from __future__ import annotations

import time

import torch
from torch import nn

from . import trust
from .attribution import IntegratedGradients, applicable, attribute_batched, make, to_map
from .data import Split
from .models import build
from .neurons import neuron_analysis
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


def ig_from_black(model: nn.Module, x: torch.Tensor, target: torch.Tensor, cfg) -> tuple[list[torch.Tensor], float]:
    """Integrated Gradients from black, per batch of ``cfg.batch_size`` (the batches attribute_batched runs),
    and the seconds it took. Computed once per split: the IG method's maps and the color share's denominator
    both read it (the same calls on the same batches, so the same bytes as computing it twice)."""
    t0 = time.perf_counter()
    ig = IntegratedGradients(model, steps=cfg.ig_steps)
    bs = cfg.batch_size
    raw = [ig.attribute(x[s : s + bs], target[s : s + bs]).detach() for s in range(0, len(x), bs)]
    return raw, time.perf_counter() - t0


def color_share(model: nn.Module, x: torch.Tensor, target: torch.Tensor, cfg, black: list[torch.Tensor]) -> dict:
    """Share of the evidence that is color: IG from the image's own grayscale version over IG from black
    (``black``: :func:`ig_from_black`'s batches; by completeness: [f(x) - f(gray x)] / [f(x) - f(0)] for the
    target logit), clipped to [0, 1]."""
    ig = IntegratedGradients(model, steps=cfg.ig_steps)
    tot_gray = []
    for s in range(0, len(x), cfg.batch_size):
        xb, tb = x[s : s + cfg.batch_size], target[s : s + cfg.batch_size]
        tot_gray.append(ig.attribute(xb, tb, baselines=trust.grayscale(xb)).sum((1, 2, 3)).detach())
    b, g = torch.cat([a.sum((1, 2, 3)) for a in black]), torch.cat(tot_gray)
    ok = b.abs() > 1e-6
    share = (g[ok] / b[ok]).clamp(0, 1)
    return {
        "mean": float(share.mean()) if ok.any() else 0.0,
        "median": float(share.median()) if ok.any() else 0.0,
        "n": int(ok.sum()),
    }


@torch.no_grad()
def completeness_gap(
    model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: torch.Tensor, rt: Runtime, chunk=512
):
    """Per image |sum(map) - (f(x) - f(0))| / |f(x) - f(0)| for the target logit: how far Integrated Gradients
    (black baseline; maps summed over channels, signed) is from completeness, the quadrature's error."""
    delta = []
    for s in range(0, len(x), chunk):
        xb, tb = x[s : s + chunk], target[s : s + chunk, None]
        with rt.autocast():
            fx, f0 = (model(rt.input(z)).float().gather(1, tb).squeeze(1) for z in (xb, torch.zeros_like(xb)))
        delta.append(fx - f0)
    delta = torch.cat(delta)
    return (maps.flatten(1).sum(1) - delta).abs() / delta.abs().clamp_min(1e-6)


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
        black, black_secs = ig_from_black(model, x, pred, cfg)
        ends = trust.endpoints(model, x, pred, rt)  # every method's deletion/insertion curve ends there
        res = {
            "color_share": color_share(model, x, pred, cfg, black),
            "n_images": len(x),
            "sanity_n": min(cfg.sanity_images, len(x)),  # images of the sanity and class-identity checks
        }
        wrong = pred != sub.y
        for name in applicable(cfg.methods, model):
            t0 = time.perf_counter()
            meth = make(name, model, **method_kwargs(name, cfg))
            if name == "integrated_gradients":  # computed once above, for the color share too
                maps, secs = torch.cat([to_map(a).float() for a in black]), black_secs
            else:
                maps = attribute_batched(meth, x, pred, cfg.batch_size)
                secs = time.perf_counter() - t0
            ns = cfg.sanity_images
            rmaps = attribute_batched(
                make(name, rand_model, **method_kwargs(name, cfg)), x[:ns], pred[:ns], cfg.batch_size
            )
            dele, ins = trust.deletion_insertion(model, x, maps, pred, rt, cfg.deletion_steps, ends)
            fals = trust.falsification(
                model, x, maps, pred, rt, cfg.falsification_k, cfg.falsification_draws, cfg.seed, ends[0]
            )
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
            if name == "integrated_gradients":
                gap = completeness_gap(model, x, maps, pred, rt)
                r |= {"ig_steps": cfg.ig_steps, "completeness_gap_median": float(gap.median())}
                r |= {"completeness_gap_p95": float(gap.quantile(0.95))}
                r |= {"completeness_within_1pct": float((gap <= 0.01).float().mean())}
            if wrong.any():
                mt = attribute_batched(meth, x[wrong], sub.y[wrong], cfg.batch_size)
                r["class_contrast"] = float(trust.class_contrast(maps[wrong], mt).mean())
            r["class_contrast_n"] = int(wrong.sum())
            res[name] = r
        out[split_name] = res
    return out


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
