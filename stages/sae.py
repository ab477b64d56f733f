"""sae@<name>: a sparse autoencoder (params: sae.runs.<name> = model + variant, optionally its own expansion
and k) on a model's hidden layer, its metrics on held-out activations, feature analysis on bias-conflicting
images and causal interventions -> data/sae/<name>.pt, metrics/sae/<name>.json, plots/sae/<name>.png."""

import sys

import torch

from shortcutlab import figures
from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.io import save_state, write_json
from shortcutlab.models import load_model
from shortcutlab.runtime import resolve
from shortcutlab.sae_analysis import analyse


def main(params, name):
    cfg = params["sae"]
    if name not in cfg.runs:
        raise KeyError(f"sae.runs.{name}: no such run (known: {', '.join(cfg.runs)})")
    run = cfg.runs[name]
    torch.manual_seed(cfg.seed)
    rt = resolve(params["compute"])
    splits = load_splits("data/dataset", "cpu", names=("train", "val", "test_hard"))
    model, _ = load_model(run.model)
    state, out, heat = analyse(rt.prepare(model).eval(), splits, run, cfg, rt)
    save_state(f"data/sae/{name}.pt", state | {"model": run.model})
    write_json(f"metrics/sae/{name}.json", out)
    figures.heatmap(
        f"plots/sae/{name}.png",
        heat.numpy(),
        "feature",
        "digit 0-9 | color 0-9",
        title=f"{name}: mean activation (hard test)",
        fmt=".1f",
    )
    h = out["held_out"]
    print(
        f"{name}: L0 {h['l0']:.1f}/{out['dictionary']} EV {h['explained_variance']:.4f} dead "
        f"{h['dead_fraction']:.3f} acc recovered {out['recovery']['acc_recovered']:.4f}; features {out['features']}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: sae.py <name>   (a sae.runs entry of params.yaml)")
    run_stage(f"sae@{sys.argv[1]}", lambda p: main(p, sys.argv[1]))
