"""Diagnostic: how ReBias's published HSIC (RBF kernel, sigma = 1) sees the protocol MLP's features.

    python scripts/rebias_kernel_scale.py [--aligned 0.99] [--scaling clean] [--epochs 3] [--seed 0]

Trains ReBias on the LfF protocol as the lff-train stage does (reads params.yaml's `literature` section and
data/literature/<aligned>/; run it in a repository with the preset on), for a few epochs, and prints per epoch,
averaged over every 47th step: the median pairwise distance between the MLP's hidden features in a batch, the
mean off-diagonal kernel value exp(-d^2 / 2 sigma^2), and the HSIC penalty f minimises. With sigma = 1 the
penalty is informative only when the features' distances are near 1: ~1 everywhere (features far smaller)
or ~0 off the diagonal (far larger) both make HSIC ~0, and ReBias trains like vanilla. Nothing is written.
"""

import argparse
import dataclasses
import sys
from collections import defaultdict

import torch

from shortcutlab import debias
from shortcutlab.data import load_splits
from shortcutlab.literature import SPLITS
from shortcutlab.params import load
from shortcutlab.runtime import resolve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aligned", default="0.99")
    ap.add_argument("--scaling", choices=["published", "clean"], default="clean")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    params = load("params.yaml")
    cfg, rt = params["literature"], resolve(params["compute"])
    if "rebias" not in cfg.methods:
        sys.exit("literature.methods has no rebias entry (turn the preset on: python -m shortcutlab.preset literature)")
    mcfg = dataclasses.replace(cfg.methods["rebias"], epochs=args.epochs)
    splits = load_splits(f"data/literature/{args.aligned}", rt.device, names=SPLITS)
    steps = -(-len(splits["train"]) // 256)
    estimator, sigma = debias.HSIC[mcfg.hsic], 1.0
    seen, rows = [0], defaultdict(list)

    def recorded(a, b, *rest):
        value = estimator(a, b, *rest)
        if a.requires_grad:  # the f-term: f's features against the color net's (detached)
            step, seen[0] = seen[0], seen[0] + 1
            if step % 47 == 0:
                with torch.no_grad():
                    z = a.float().flatten(1)
                    d = torch.cdist(z, z)[~torch.eye(len(z), dtype=torch.bool, device=z.device)]
                    k = torch.exp(-d.pow(2) / (2 * sigma**2))
                    rows[step // steps].append((d.median().item(), k.mean().item(), value.item()))
        return value

    debias.HSIC[mcfg.hsic] = recorded
    kw = {"hidden": 100, "depth": 3, "input_scale": 1 / 255 if args.scaling == "published" else 1.0}
    debias.train_method("rebias", mcfg, cfg, splits["train"], rt, args.seed, {}, arch=("mlp", kw))
    print(f"ReBias, hsic {mcfg.hsic}, aligned {args.aligned}, {args.scaling} scaling, seed {args.seed}")
    print("epoch  median pairwise feature distance  mean off-diagonal kernel  HSIC (f-term)")
    for epoch, r in sorted(rows.items()):
        mean = [sum(col) / len(col) for col in zip(*r, strict=True)]
        print(f"{epoch + 1:5d}  {mean[0]:31.4g}  {mean[1]:24.3g}  {mean[2]:13.3g}")


if __name__ == "__main__":
    main()
