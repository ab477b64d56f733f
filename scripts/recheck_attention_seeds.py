"""Independent re-check of the attention-model numbers: train every ``train_attention.runs`` entry again with
other seeds (same params otherwise, same code as the stage) and print the validation and hard-test accuracy.
Seed 0 reproduces the stage's models; the others show how much a number depends on one initialisation.

    python scripts/recheck_attention_seeds.py [--seeds 1 2] [--runs attention_debiased vit_debiased]
"""

import argparse
import dataclasses

from shortcutlab.attention import train_run
from shortcutlab.data import load_splits
from shortcutlab.params import load
from shortcutlab.runtime import resolve
from shortcutlab.training import accuracy

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", nargs="+", default=None, help="train_attention.runs names (default: all)")
    args = ap.parse_args()
    p = load()
    common, rt = p["train_attention"], resolve(p["compute"])
    splits = load_splits("data/dataset", rt.device)
    names = args.runs or list(common.runs)
    unknown = sorted(set(names) - set(common.runs))
    if unknown:
        raise SystemExit(f"train_attention.runs has no {', '.join(unknown)} (known: {', '.join(common.runs)})")
    print("run | seed | val % | hard test %")
    for name in names:
        for seed in args.seeds:
            run = dataclasses.replace(common.runs[name], seed=seed)
            model, _, _ = train_run(run, common, splits["train"], rt, evals={})
            val, hard = accuracy(model, splits["val"], rt), accuracy(model, splits["test_hard"], rt)
            print(f"{name} | {seed} | {100 * val:.2f} | {100 * hard:.2f}", flush=True)
