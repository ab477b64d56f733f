"""Re-check: does Integrated Gradients with the explain stage's Gauss-Legendre nodes hold completeness within 1%?

    python scripts/recheck_ig_completeness.py [--images 500] [--steps 4 8 16 32]   (after dvc repro / dvc pull)

Completeness (Sundararajan et al., 2017): the attributions of an image sum to f(x) - f(baseline) for the target
logit. A finite rule only approximates the path integral; the gap, |sum(attr) - (f(x) - f(0))| / |f(x) - f(0)|,
says how well. For every analysed model (its first seed), on the explain stage's fixed hard-test images, target
the predicted class, black baseline (as the explain stage's IG), under the stage's runtime (bf16 autocast where
the CPU computes bf16 natively) and in fp32: the median and 95th-percentile gap and the share of images within
1%, for Gauss-Legendre nodes (what the stage uses; `explain.ig_steps`) and, at the same step counts, the
trapezoid rule on evenly spaced points (Captum's `riemann_trapezoid`) for comparison.
"""

import argparse
import json

import numpy as np
import torch

from shortcutlab.attribution import IntegratedGradients, to_map
from shortcutlab.data import load_splits
from shortcutlab.explain import completeness_gap, fixed_subset
from shortcutlab.models import load_model
from shortcutlab.params import Compute, load
from shortcutlab.runtime import resolve
from shortcutlab.training import predict


class TrapezoidIG(IntegratedGradients):
    """The same path integral with the trapezoid rule on ``steps`` evenly spaced points (ends included)."""

    def __init__(self, model, steps: int = 16, chunk: int = 512):
        super().__init__(model, steps=steps, chunk=chunk)
        self.alphas = torch.linspace(0, 1, steps)
        w = torch.full((steps,), 1.0 / (steps - 1))
        w[0] = w[-1] = 0.5 / (steps - 1)
        self.weights = w


def gaps(ig: IntegratedGradients, model, x: torch.Tensor, target: torch.Tensor, rt, batch: int = 250) -> np.ndarray:
    """Relative completeness gap per image (target logit, black baseline): the explain stage's own measure."""
    out = []
    for s in range(0, len(x), batch):
        xb, tb = x[s : s + batch], target[s : s + batch]
        with rt.autocast():
            maps = to_map(ig.attribute(rt.input(xb), tb)).detach().float()
        out.append(completeness_gap(model, xb, maps, tb, rt).cpu().numpy())
    return np.concatenate(out)


def summary(g: np.ndarray) -> dict:
    return {
        "median": float(np.median(g)),
        "p95": float(np.percentile(g, 95)),
        "within_1pct": float((g <= 0.01).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=500, help="fixed hard-test images per model")
    ap.add_argument("--steps", type=int, nargs="+", default=[4, 8, 16, 32])
    ap.add_argument("--models", nargs="*", help="analysed model names (default: all)")
    args = ap.parse_args()
    p = load()
    runtimes = {"stage": resolve(p["compute"]), "fp32": resolve(Compute(device="cpu", precision="fp32", threads=0))}
    hard = load_splits("data/dataset", names=("test_hard",))["test_hard"]
    x = fixed_subset(hard, args.images, p["explain"].seed).images()
    out = {"images": len(x), "ig_steps_in_params": p["explain"].ig_steps, "models": {}}
    for name, path in p["analysed_models"].items():
        if args.models and name not in args.models:
            continue
        row = {}
        for label, rt in runtimes.items():
            model = rt.prepare(load_model(path, rt.device)[0]).eval()
            target = predict(model, x, rt).argmax(1)
            for k in args.steps:
                for rule, cls in (("gauss_legendre", IntegratedGradients), ("trapezoid", TrapezoidIG)):
                    row[f"{label}/{rule}/{k}"] = summary(gaps(cls(model, steps=k), model, x, target, rt))
        out["models"][name] = row
        gl = row[f"stage/gauss_legendre/{p['explain'].ig_steps}"]
        print(
            f"{name}: stage runtime, {p['explain'].ig_steps} Gauss-Legendre nodes: median gap {gl['median']:.4f}, "
            f"p95 {gl['p95']:.4f}, within 1%: {gl['within_1pct']:.1%}",
            flush=True,
        )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
