"""attack@<model>: FGSM and PGD (targeted source->target and untargeted) at every epsilon of the grid
-> metrics/attack/<model>.json, plots/attack/<model>.csv, plots/attack/<model>.png."""

import sys

from shortcutlab import figures
from shortcutlab.attacks import evaluate_attacks
from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.io import write_csv, write_json
from shortcutlab.models import load_model
from shortcutlab.runtime import resolve


def example_grid(path, name, ex, eps, n=6):
    """n images x (clean, perturbation, adversarial) at the middle epsilon, untargeted PGD."""
    k = len(eps) // 2
    x, y, clean = ex["x"], ex["y"], ex["clean"]
    xa, la = ex["adv"].x_adv[k][:n].cpu(), ex["adv"].logits[k][:n].argmax(1).cpu()
    imgs, titles = [], []
    for i in range(len(xa)):
        d = xa[i] - x[i].cpu()
        imgs += [x[i].cpu(), (d / (2 * eps[k]) + 0.5).clamp(0, 1), xa[i]]
        titles += [f"clean: {int(clean[i])} (y={int(y[i])})", f"delta x{1 / (2 * eps[k]):.0f}", f"adv: {int(la[i])}"]
    figures.image_grid(path, imgs, titles, ncols=6, suptitle=f"{name}: untargeted PGD, eps={eps[k]}")


def main(params, name, path):
    cfg, rt = params["attack"], resolve(params["compute"])
    splits = load_splits("data/dataset", rt.device, names=("test_hard", "test_easy"))
    model, _ = load_model(path, rt.device)
    out, rows, example = evaluate_attacks(rt.prepare(model), splits, cfg, rt)
    write_json(f"metrics/attack/{name}.json", out)
    write_csv(f"plots/attack/{name}.csv", rows)
    example_grid(f"plots/attack/{name}.png", name, example, list(cfg.eps))
    t = out["targeted"].get("test_hard", {})
    print(
        f"{name}: targeted hard pgd success by eps {[round(v['success'], 3) for v in t.get('pgd', [])]}; "
        f"robust acc pgd {[round(v['robust_acc'], 3) for v in out['untargeted']['pgd']]}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: attack.py <model name> <checkpoint file or directory>")
    run_stage(f"attack@{sys.argv[1]}", lambda p: main(p, sys.argv[1], sys.argv[2]))
