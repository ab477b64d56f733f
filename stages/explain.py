"""explain@<model>: every attribution method on fixed hard/easy test images, scored by every trust metric
-> metrics/explain/<model>.json, plots/explain/<model>.png (image / map / overlay grid)."""

import sys

import torch

from shortcutlab import figures
from shortcutlab.attribution import applicable, attribute_batched, make
from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.explain import (
    analyse,
    fixed_subset,
    method_kwargs,
    probes,
    success_failure_probes,
)
from shortcutlab.io import write_json, write_timings
from shortcutlab.models import load_model
from shortcutlab.neurons import class_visualisation, neuron_deep_dive
from shortcutlab.runtime import resolve
from shortcutlab.training import predict


def overlay_grid(path, model, split, cfg, rt, name, n=6):
    sub = fixed_subset(split, n, cfg.seed)
    x = sub.images().to(rt.device)
    pred = predict(model, x, rt).argmax(1)
    imgs, titles = [], []
    for i in range(n):
        imgs.append(x[i].cpu())
        titles.append(f"y={int(sub.y[i])} pred={int(pred[i])}")
    for m in applicable(cfg.methods, model):
        maps = attribute_batched(make(m, model, **method_kwargs(m, cfg)), x, pred, n).cpu()
        for i in range(n):
            mp = maps[i].clamp_min(0)
            mp = mp / mp.max() if mp.max() > 0 else mp  # an all-zero map stays all-zero: shown as such
            imgs.append((0.5 * x[i].cpu() + 0.5 * torch.stack([mp, torch.zeros_like(mp), 1 - mp])).clamp(0, 1))
            titles.append(m[:16])
    figures.image_grid(path, imgs, titles, ncols=n, suptitle=f"{name}: hard-test images, maps of the predicted class")


def main(params, name, path):
    cfg, rt = params["explain"], resolve(params["compute"])
    splits = load_splits("data/dataset", rt.device, names=("test_hard", "test_easy"))
    model, ckpt = load_model(path, rt.device)
    model = rt.prepare(model)
    out = analyse(model, ckpt["arch"], ckpt["arch_kwargs"], splits, cfg, rt)
    palette = splits["test_hard"].palette
    vis, purity = class_visualisation(model, palette, seed=cfg.seed)
    pr, grid, titles = probes(model, splits["test_hard"], rt)
    sf, sf_grid, sf_titles = success_failure_probes(model, splits["test_hard"], rt)
    out["class_visualisation_purity"] = purity
    out["probes"] = pr
    out["probes_hard_test"] = sf
    grid, titles = grid + [torch.zeros(3, 28, 28)] * (-len(grid) % 12), titles + [""] * (-len(titles) % 12)
    figures.image_grid(
        f"plots/explain/{name}_classes.png",
        [v for v in vis] + [torch.zeros(3, 28, 28)] * 2 + grid + sf_grid,
        [f"class {k}: purity {purity[str(k)]:.2f}" for k in range(10)] + ["", ""] + titles + sf_titles,
        ncols=12,
        suptitle=f"{name}: class visualisations (row 1), hand-made conflicting probes (row 2), "
        "hard-test successes and failures (rows 3+): image, Grad-CAM of the predicted and the true "
        "class",
    )
    deep, arrays = neuron_deep_dive(model, palette, seeds=(cfg.seed, cfg.seed + 1))
    out["neurons"] |= deep
    figures.neuron_figure(f"plots/explain/{name}_neurons.png", arrays, name)
    timings = {
        s: {
            m: {"maps_per_s": r.pop("maps_per_s")}
            for m, r in out[s].items()
            if isinstance(r, dict) and "maps_per_s" in r
        }
        for s in ("test_hard", "test_easy")
    }
    write_json(f"metrics/explain/{name}.json", out)
    write_timings(f"explain@{name}", timings)
    overlay_grid(f"plots/explain/{name}.png", model, splits["test_hard"], cfg, rt, name)
    h = out["test_hard"]
    print(
        f"{name}: color share hard {h['color_share']['mean']:.3f}; "
        + ", ".join(
            f"{m} fg={h[m]['foreground_mass']:.2f} deg={h[m]['degenerate_rate']:.2f}"
            for m in applicable(cfg.methods, model)
        )
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: explain.py <model name> <checkpoint file or directory>")
    run_stage(f"explain@{sys.argv[1]}", lambda p: main(p, sys.argv[1], sys.argv[2]))
