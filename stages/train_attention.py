"""train-attention@<run>: one attention model (spatial-attention CNN or tiny ViT, biased or debiased) on every
seed of its run, and train-vit-frozen: a linear head on a frozen ViT backbone -> data/models/attention/<name>.pt
(the first seed's model, the one every analysis reads), metrics/train_attention/<name>.json (the top level
describes that model; ``seeds`` and ``summary`` (mean ± std) cover every seed, final epoch),
plots/train_attention/<name>.csv."""

import sys

from shortcutlab.attention import frozen_probe, train_run
from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.evaluation import evaluate_model, seed_summary
from shortcutlab.io import write_csv, write_json, write_timings
from shortcutlab.models import load_model, save_model
from shortcutlab.runtime import resolve
from shortcutlab.training import check_gate, epoch_timings


def train_seed(name, common, splits, rt, seed):
    """One seed of run ``name`` -> (model, arch, arch_kwargs, meta, history)."""
    evals = {"test_hard": splits["test_hard"]}  # per-epoch curve for plotting only, no selection
    if name == "vit_frozen":
        cfg = common.frozen
        backbone, ckpt = load_model(f"data/models/attention/{cfg.backbone}.pt", rt.device)
        model, hist = frozen_probe(backbone, cfg, common.batch_size, splits["train"], rt, evals, seed)
        meta = {"method": "frozen_probe", "backbone": cfg.backbone, "epochs": cfg.epochs, "seed": seed}
        return model, "vit", ckpt["arch_kwargs"], meta, hist
    if name not in common.runs:
        raise KeyError(f"train_attention.runs: no run named {name!r} (known: {', '.join(common.runs)})")
    run = common.runs[name]
    model, kw, hist = train_run(run, common, splits["train"], rt, evals, seed)
    return model, run.arch, kw, {"method": run.method, "epochs": run.epochs, "seed": seed}, hist


def main(params, name):
    common, rt = params["train_attention"], resolve(params["compute"])
    splits = load_splits("data/dataset", rt.device)
    seeds = common.frozen.seeds if name == "vit_frozen" else common.runs[name].seeds if name in common.runs else [0]
    results, per_seed, curve, timings = {}, {}, [], {}
    for seed in seeds:  # every seed is gated before anything is written
        model, arch, kw, meta, hist = results[seed] = train_seed(name, common, splits, rt, seed)
        m = evaluate_model(model, {k: v for k, v in splits.items() if k != "train"}, rt)
        gate_run = f"train-attention@{name} seed {seed}"
        m["gate"] = check_gate(gate_run, "train_attention.gate", common.gate, model, splits["val"], rt)
        per_seed[str(seed)] = m
        curve += [
            {"seed": seed, "epoch": h["epoch"], "train_loss": h["train_loss"], "test_hard_acc": h["test_hard_acc"]}
            for h in hist
        ]
        timings[f"seed{seed}"] = epoch_timings(hist)
        print(f"{name} seed {seed} [{rt.describe()}]: hard={m['test_hard']['acc']:.4f} val={m['val']['acc']:.4f}")
    model, arch, kw, meta, _ = results[seeds[0]]
    save_model(f"data/models/attention/{name}.pt", model, arch, kw, meta)
    m = dict(per_seed[str(seeds[0])])
    m["model"] = {
        "vit": int(arch == "vit"),
        **{k: v for k, v in meta.items() if not isinstance(v, str)},
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    m["summary"] = seed_summary(per_seed)
    m["seeds"] = {s: {k: r[k]["acc"] for k in ("val", "test_hard", "test_easy")} for s, r in per_seed.items()}
    m["n_seeds"] = len(per_seed)
    write_json(f"metrics/train_attention/{name}.json", m)
    write_timings(f"train-attention@{name}", timings)
    write_csv(f"plots/train_attention/{name}.csv", curve)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: train_attention.py <run name | vit_frozen>")
    run_stage(f"train-attention@{sys.argv[1]}", lambda p: main(p, sys.argv[1]))
