"""Classification metrics shared by every training stage (accuracy, color-following, confusion)."""

from __future__ import annotations

import statistics

import torch
from torch import nn

from .data import Split, paint
from .runtime import Runtime
from .training import predict


def confusion(pred: torch.Tensor, y: torch.Tensor, k: int = 10) -> torch.Tensor:
    return torch.bincount(y.cpu() * k + pred.cpu(), minlength=k * k).reshape(k, k)


def classification_metrics(pred: torch.Tensor, split: Split) -> dict:
    """Accuracy, per-class accuracy, worst class and color-following rate (prediction == the digit whose
    dominant color the image wears; color id c is digit c's dominant color)."""
    pred, y, c = pred.cpu(), split.y.cpu(), split.color.cpu()
    per_class = [float((pred[y == k] == k).float().mean()) if (y == k).any() else 0.0 for k in range(10)]
    return {
        "acc": float((pred == y).float().mean()),
        "color_following": float((pred == c).float().mean()),
        "worst_class_acc": min(per_class),
        "per_class_acc": {str(k): v for k, v in enumerate(per_class)},
    }


def evaluate_model(model: nn.Module, splits: dict[str, Split], rt: Runtime) -> dict:
    """Metrics on every split given (train/val/test_hard/test_easy); per-class detail on the hard test."""
    out = {}
    for name, split in splits.items():
        m = classification_metrics(predict(model, split, rt).argmax(1), split)
        if name != "test_hard":
            m.pop("per_class_acc")
        out[name] = m
    return out


@torch.no_grad()
def red_one_probe(model: nn.Module, test: Split, rt: Runtime) -> dict:
    """The study's probe: a real digit 1 painted in digit 0's color (red, no background).
    Reports the first test 1 (as the study did) and the rate over every test 1."""
    ones = test.gray[test.y == 1]
    x = paint(ones, test.palette[0]).to(rt.device)
    probs = torch.softmax(predict(model, x, rt), 1).cpu()
    pred = probs.argmax(1)
    # the same question on real test images: hard-test 1s that happen to be red (background included)
    red = (test.y == 1) & (test.color == 0)
    red_pred = predict(model, test.subset(red), rt).argmax(1).cpu() if red.any() else torch.zeros(0)
    return {
        "first_pred": int(pred[0]),
        "first_probs": {str(k): float(p) for k, p in enumerate(probs[0])},
        "pred_zero_rate": float((pred == 0).float().mean()),
        "pred_one_rate": float((pred == 1).float().mean()),
        "n": int(len(pred)),
        "hard_test_red_ones_n": int(red.sum()),
        "hard_test_red_ones_pred_zero_rate": float((red_pred == 0).float().mean()) if len(red_pred) else 0.0,
    }


def mean_std(values) -> dict:
    values = list(values)
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


SUMMARY_KEYS = {
    "hard_acc": ("test_hard", "acc"),
    "easy_acc": ("test_easy", "acc"),
    "val_acc": ("val", "acc"),
    "worst_class_hard_acc": ("test_hard", "worst_class_acc"),
    "hard_color_following": ("test_hard", "color_following"),
}


def seed_summary(per_seed: dict[str, dict]) -> dict:
    """Mean and sample std over seeds of the headline numbers of :func:`evaluate_model` records."""
    return {k: mean_std(per_seed[s][a][b] for s in per_seed) for k, (a, b) in SUMMARY_KEYS.items()}


def best_epoch(history: list[dict], key: str = "test_hard_acc") -> dict:
    """TEST-SELECTED, never used for a claim of ours: the epoch whose logged ``key`` is highest (the
    number a study gets by picking its best epoch on the test set)."""
    i = max(range(len(history)), key=lambda j: history[j][key])
    return {"epoch": history[i]["epoch"], "acc": history[i][key]}
