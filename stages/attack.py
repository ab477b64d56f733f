"""attack@<model>: FGSM and PGD (targeted source->target and untargeted) at every epsilon of the grid
-> metrics/attack/<model>.json, plots/attack/<model>.csv, plots/attack/<model>.png."""

import sys

import torch

from shortcutlab import figures
from shortcutlab.attacks import attack, check_results, is_monotone, min_eps, targeted_metrics, untargeted_metrics
from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.io import write_csv, write_json
from shortcutlab.models import load_model
from shortcutlab.runtime import resolve
from shortcutlab.training import predict


def main(params, name, path):
    cfg, rt = params["attack"], resolve(params["compute"])
    splits = load_splits("data/dataset", rt.device, names=("test_hard", "test_easy"))
    model, _ = load_model(path, rt.device)
    model = rt.prepare(model)
    eps = list(cfg.eps)
    out = {"targeted": {}, "untargeted": {}}
    rows = [{"eps": e} for e in eps]  # one row per epsilon: success of every attack (dvc plots)
    kw = {"steps": cfg.steps, "alpha_ratio": cfg.alpha_ratio, "restarts": cfg.restarts, "seed": cfg.seed}
    for split in cfg.targeted_splits:
        s = splits[split]
        x = s.images(s.y == cfg.source).to(rt.device)
        x = x[: cfg.n_targeted] if cfg.n_targeted else x
        res = {m: targeted_metrics(attack(model, x, torch.full((len(x),), cfg.source, device=rt.device), eps, rt,
                                          method=m, target=cfg.target, **kw), x, cfg.target)
               for m in ("fgsm", "pgd")}
        check_results(res, eps, "success", n=len(x))
        out["targeted"][split] = {m: {f"eps_{e}": r for e, r in zip(eps, res[m], strict=True)} for m in res}
        out["targeted"][split]["n_images"] = len(x)
        out["targeted"][split]["fgsm_monotone"] = int(is_monotone([r["success"] for r in res["fgsm"]]))
        for m in res:
            me = min_eps(eps, [r["success"] for r in res[m]])
            if me is not None:
                out["targeted"][split][f"min_eps_90_{m}"] = me
            for i, r in enumerate(res[m]):
                rows[i][f"targeted_{split}_{m}"] = r["success"]
    s = splits["test_hard"]
    idx = torch.randperm(len(s), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.n_untargeted]
    sub = s.subset(idx.to(rt.device))
    x, y = sub.images(), sub.y
    clean = predict(model, x, rt).argmax(1)
    ures = {}
    for m in ("fgsm", "pgd"):
        r = attack(model, x, y, eps, rt, method=m, **kw)
        ures[m] = untargeted_metrics(r, x, y, clean)
        if m == "pgd":
            adv = r
    check_results(ures, eps, "success_on_clean_correct", n=int((clean == y).sum()))
    out["untargeted"] = {m: {f"eps_{e}": r for e, r in zip(eps, ures[m], strict=True)} for m in ures}
    out["untargeted"]["clean_acc"] = float((clean == y).float().mean())
    out["untargeted"]["n_images"] = len(x)
    out["untargeted"]["fgsm_monotone"] = int(is_monotone([r["success_on_clean_correct"] for r in ures["fgsm"]]))
    for m in ures:
        for i, r in enumerate(ures[m]):
            rows[i][f"untargeted_{m}"] = r["success_on_clean_correct"]
            rows[i][f"robust_acc_{m}"] = r["robust_acc"]
    write_json(f"metrics/attack/{name}.json", out)
    write_csv(f"plots/attack/{name}.csv", rows)
    # grid: 6 images x (clean, perturbation, adversarial) at the middle epsilon, untargeted PGD
    k = len(eps) // 2
    xa, la = adv.x_adv[k][:6].cpu(), adv.logits[k][:6].argmax(1).cpu()
    imgs, titles = [], []
    for i in range(len(xa)):
        d = xa[i] - x[i].cpu()
        imgs += [x[i].cpu(), (d / (2 * eps[k]) + 0.5).clamp(0, 1), xa[i]]
        titles += [f"clean: {int(clean[i])} (y={int(y[i])})", f"delta x{1 / (2 * eps[k]):.0f}", f"adv: {int(la[i])}"]
    figures.image_grid(f"plots/attack/{name}.png", imgs, titles, ncols=6,
                       suptitle=f"{name}: untargeted PGD, eps={eps[k]}")
    t = out["targeted"].get("test_hard", {})
    print(f"{name}: targeted hard pgd success by eps "
          f"{[round(v['success'], 3) for v in t.get('pgd', {}).values()]}; robust acc pgd "
          f"{[round(v['robust_acc'], 3) for v in out['untargeted']['pgd'].values()]}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: attack.py <model name> <checkpoint file or directory>")
    run_stage(f"attack@{sys.argv[1]}", lambda p: main(p, sys.argv[1], sys.argv[2]))
