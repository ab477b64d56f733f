"""The field's own Colored-MNIST benchmark: the LfF protocol (Nam et al., NeurIPS 2020), written from its
description and the public alinlab/LfF code (facts, not code, taken from it; see the README):

- the 60,000 MNIST training digits; each digit's stroke multiplied by one of ten fixed mean colors plus
  per-image Gaussian color noise (one draw per RGB channel, std by severity), clipped to [0, 1]; black
  background; uint8 by truncation;
- colors are not drawn at random: within each class, in dataset order, the first images get color 0, the
  next color 1, ... in blocks whose sizes are round(n_class x cumulative share) (the aligned share for the
  class's own color, the rest split evenly over the nine others);
- the unbiased test set: MNIST's 10,000 test digits, the same assignment with an aligned share of 0.1, so
  every (digit, color) cell holds about 100 images;
- scored as the LfF code scores it (mean accuracy over the 10 x 10 digit x color cells) and as plain accuracy
  on the bias-conflicting test images.
"""

from __future__ import annotations

import numpy as np
import torch

from .data import Split
from .evaluation import mean_std
from .runtime import Runtime
from .training import check_gate, predict

SPLITS = ("train", "test")


def assign_colors(y: np.ndarray, aligned: float, k: int = 10) -> np.ndarray:
    """Color id per image, LfF's deterministic block assignment (see the module docstring)."""
    share = np.full((k, k), (1.0 - aligned) / (k - 1))
    np.fill_diagonal(share, aligned)
    colors = np.zeros(len(y), dtype=np.int64)
    for c in range(k):
        idx = np.flatnonzero(y == c)
        bounds = np.round(len(idx) * np.cumsum(share[c]))  # block ends per color, in dataset order
        colors[idx] = np.minimum(np.searchsorted(bounds, np.arange(len(idx)), side="right"), k - 1)
    return colors


def colorize(gray: np.ndarray, color_ids: np.ndarray, mean_colors: np.ndarray, std: float, rng) -> np.ndarray:
    """(N,28,28) uint8 digits -> (N,3,28,28) uint8: stroke x clip(mean color + N(0, std^2) per channel, 0, 1)."""
    rgb = np.clip(mean_colors[color_ids] + rng.standard_normal((len(gray), 3)) * std, 0.0, 1.0)
    return (rgb[:, :, None, None] * gray[:, None].astype(np.float64)).astype(np.uint8)  # truncates, like np.uint8


def build_protocol(raw: dict[str, np.ndarray], cfg, aligned: float) -> dict[str, dict[str, np.ndarray]]:
    """The protocol's train (all 60,000 training digits: our train + val, MNIST's order) and test splits."""
    mean = np.asarray(cfg.colors, dtype=np.float64)
    std = cfg.noise_std[cfg.severity - 1]
    rngs = [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(cfg.seed).spawn(2)]
    parts = {
        "train": (np.concatenate([raw["train_x"], raw["val_x"]]), np.concatenate([raw["train_y"], raw["val_y"]])),
        "test": (raw["test_x"], raw["test_y"]),
    }
    out = {}
    for (name, (gray, y)), rng in zip(parts.items(), rngs, strict=True):
        y = y.astype(np.int64)
        colors = assign_colors(y, aligned if name == "train" else cfg.test_aligned)
        out[name] = {
            "x": colorize(gray, colors, mean, std, rng),
            "gray": gray,
            "y": y,
            "color": colors,
            "conflict": colors != y,
            "palette": mean.astype(np.float32),
        }
    return out


def split_stats(s: dict[str, np.ndarray]) -> dict:
    """Aligned share, the (digit, color) cell counts' range, and each color's mean stroke RGB."""
    counts = np.zeros((10, 10), dtype=np.int64)
    np.add.at(counts, (s["y"], s["color"]), 1)
    stroke = s["gray"] > 127  # bright stroke pixels: color = x / gray there
    per_color = {}
    for c in range(10):
        m = s["color"] == c
        if m.any():
            ratio = s["x"][m].astype(np.float64) / np.maximum(s["gray"][m][:, None], 1)
            per_color[str(c)] = np.mean(ratio.transpose(1, 0, 2, 3)[:, stroke[m]], axis=1).tolist()
    return {
        "n": int(len(s["y"])),
        "aligned_share": float(np.mean(s["color"] == s["y"])),
        "cell_count_min": int(counts.min()),
        "cell_count_max": int(counts.max()),
        "mean_stroke_rgb": per_color,
    }


def scores(pred: torch.Tensor, split: Split) -> dict:
    """LfF's score (mean accuracy over the 10 x 10 digit x color cells that hold images) and plain accuracy
    on all, bias-aligned and bias-conflicting test images."""
    pred, y, c = pred.cpu(), split.y.cpu(), split.color.cpu()
    ok = (pred == y).float()
    cell = torch.zeros(100).index_add_(0, y * 10 + c, ok)
    cnt = torch.zeros(100).index_add_(0, y * 10 + c, torch.ones_like(ok))
    conflict = c != y
    return {
        "unbiased_acc": float((cell[cnt > 0] / cnt[cnt > 0]).mean()),
        "acc": float(ok.mean()),
        "conflicting_acc": float(ok[conflict].mean()) if conflict.any() else 0.0,
        "aligned_acc": float(ok[~conflict].mean()) if (~conflict).any() else 0.0,
    }


def run_protocol(cfg, aligned: float, method: str, scaling: str, splits: dict[str, Split], rt: Runtime):
    """One method of ``literature.methods`` on the protocol's MLP, every seed, final epoch. The gate reads
    the first 10,000 training images (the protocol has no validation split). Returns (metrics, curve)."""
    from .debias import train_method

    kw = {"hidden": 100, "depth": 3, "input_scale": 1 / 255 if scaling == "published" else 1.0}
    mcfg = cfg.methods[method]
    gate_split = splits["train"].subset(torch.arange(min(10000, len(splits["train"])), device=rt.device))
    per_seed, curve = {}, []
    for seed in cfg.seeds_for(method):
        evals = {"test": splits["test"]}  # per-epoch curve for plotting only, never selection
        model, _, _, hist, extra = train_method(method, mcfg, cfg, splits["train"], rt, seed, evals, arch=("mlp", kw))
        run = f"lff-train@{aligned}-{method}-{scaling} seed {seed}"
        gate = check_gate(run, "literature.gate", cfg.gate, model, gate_split, rt)
        per_seed[str(seed)] = scores(predict(model, splits["test"], rt).argmax(1), splits["test"]) | {
            "train_acc": gate["val_acc"],
            **{k: v for k, v in extra.items() if not isinstance(v, list)},
        }
        curve += [{"seed": seed, "epoch": h["epoch"], "test_acc": h["test_acc"]} for h in hist]
    keys = ("unbiased_acc", "conflicting_acc", "aligned_acc", "acc")
    return {
        "aligned": aligned,
        "method": method,
        "scaling": scaling,
        "epochs": mcfg.epochs,
        "n_seeds": len(per_seed),
        "summary": {k: mean_std(r[k] for r in per_seed.values()) for k in keys},
        "seeds": per_seed,
    }, curve
