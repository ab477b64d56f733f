"""train-debiased@<method>: one debiasing method, every seed -> data/models/debiased/<method>/seed<k>.pt,
metrics/train_debiased/<method>.json, plots/train_debiased/<method>.csv."""

import statistics
import sys

from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.debias import train_method
from shortcutlab.evaluation import evaluate_model
from shortcutlab.io import write_csv, write_json
from shortcutlab.models import save_model
from shortcutlab.runtime import resolve


def mean_std(values):
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def main(params, method):
    common, rt = params["train_debiased"], resolve(params["compute"])
    cfg = common.method(method)
    splits = load_splits("data/dataset", rt.device)
    per_seed, curves = {}, {}
    for seed in common.seeds_for(method):
        model, arch, kw, hist, extra = train_method(
            method, cfg, common, splits["train"], rt, seed,
            evals={"test_hard": splits["test_hard"]})  # per-epoch curve for plotting only
        save_model(f"data/models/debiased/{method}/seed{seed}.pt", model, arch, kw,
                   {"method": method, "seed": seed, "epochs": cfg.epochs})
        m = evaluate_model(model, {k: v for k, v in splits.items() if k != "train"}, rt)
        m["train_seconds"] = sum(h["seconds"] for h in hist)
        m["images_per_s"] = statistics.fmean(h["images_per_s"] for h in hist)
        m.update(extra)
        per_seed[str(seed)] = m
        curves[seed] = hist
        print(f"{method} seed {seed} [{rt.describe()}]: hard={m['test_hard']['acc']:.4f} "
              f"easy={m['test_easy']['acc']:.4f} val={m['val']['acc']:.4f} ({m['train_seconds']:.0f}s)", flush=True)
    keys = {"hard_acc": ("test_hard", "acc"), "easy_acc": ("test_easy", "acc"), "val_acc": ("val", "acc"),
            "worst_class_hard_acc": ("test_hard", "worst_class_acc"),
            "hard_color_following": ("test_hard", "color_following")}
    summary = {k: mean_std([per_seed[s][a][b] for s in per_seed]) for k, (a, b) in keys.items()}
    summary["train_seconds"] = mean_std([per_seed[s]["train_seconds"] for s in per_seed])
    summary["images_per_s"] = mean_std([per_seed[s]["images_per_s"] for s in per_seed])
    write_json(f"metrics/train_debiased/{method}.json",
               {"method": {"epochs": cfg.epochs, "n_seeds": len(per_seed)},
                "summary": summary, "seeds": per_seed})
    rows = []
    for seed, hist in curves.items():
        for h in hist:
            rows.append({"seed": seed, "epoch": h["epoch"], "train_loss": h["train_loss"],
                         "test_hard_acc": h["test_hard_acc"]})
    write_csv(f"plots/train_debiased/{method}.csv", rows)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: train_debiased.py <method>")
    run_stage(f"train-debiased@{sys.argv[1]}", lambda p: main(p, sys.argv[1]))
