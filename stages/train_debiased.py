"""train-debiased@<method>: one debiasing method, every seed -> data/models/debiased/<method>/seed<k>.pt,
metrics/train_debiased/<method>.json, plots/train_debiased/<method>.csv."""

import sys

from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.debias import train_seeds
from shortcutlab.io import write_csv, write_json, write_timings
from shortcutlab.models import save_model
from shortcutlab.runtime import resolve


def main(params, method):
    common, rt = params["train_debiased"], resolve(params["compute"])
    splits = load_splits("data/dataset", rt.device)
    result = train_seeds(method, common, splits, rt)  # gated: raises before anything is written
    for seed, (model, arch, kw) in result.models.items():
        save_model(
            f"data/models/debiased/{method}/seed{seed}.pt",
            model,
            arch,
            kw,
            {"method": method, "seed": seed, "epochs": common.method(method).epochs},
        )
    write_json(f"metrics/train_debiased/{method}.json", result.metrics)
    write_csv(f"plots/train_debiased/{method}.csv", result.curve)
    write_timings(f"train-debiased@{method}", result.timings)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: train_debiased.py <method>")
    run_stage(f"train-debiased@{sys.argv[1]}", lambda p: main(p, sys.argv[1]))
