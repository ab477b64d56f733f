"""train-attention@<run>: one attention model (spatial-attention CNN or tiny ViT, biased or debiased), and
train-vit-frozen: a linear head on a frozen ViT backbone -> data/models/attention/<name>.pt,
metrics/train_attention/<name>.json, plots/train_attention/<name>.csv."""

import sys

from shortcutlab.attention import frozen_probe, train_run
from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.evaluation import evaluate_model
from shortcutlab.io import write_csv, write_json, write_timings
from shortcutlab.models import load_model, save_model
from shortcutlab.runtime import resolve
from shortcutlab.training import check_gate, epoch_timings


def main(params, name):
    common, rt = params["train_attention"], resolve(params["compute"])
    splits = load_splits("data/dataset", rt.device)
    evals = {"test_hard": splits["test_hard"]}  # per-epoch curve for plotting only, no selection
    if name == "vit_frozen":
        cfg = common.frozen
        backbone, ckpt = load_model(f"data/models/attention/{cfg.backbone}.pt", rt.device)
        model, hist = frozen_probe(backbone, cfg, common.batch_size, splits["train"], rt, evals)
        arch, kw = "vit", ckpt["arch_kwargs"]
        meta = {"method": "frozen_probe", "backbone": cfg.backbone, "epochs": cfg.epochs, "seed": cfg.seed}
    else:
        if name not in common.runs:
            raise KeyError(f"train_attention.runs: no run named {name!r} (known: {', '.join(common.runs)})")
        run = common.runs[name]
        model, kw, hist = train_run(run, common, splits["train"], rt, evals)
        arch, meta = run.arch, {"method": run.method, "epochs": run.epochs, "seed": run.seed}
    m = evaluate_model(model, {k: v for k, v in splits.items() if k != "train"}, rt)
    m["gate"] = check_gate(f"train-attention@{name}", "train_attention.gate", common.gate, model, splits["val"], rt)
    save_model(f"data/models/attention/{name}.pt", model, arch, kw, meta)
    m["model"] = {
        "vit": int(arch == "vit"),
        **{k: v for k, v in meta.items() if not isinstance(v, str)},
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    write_json(f"metrics/train_attention/{name}.json", m)
    write_timings(f"train-attention@{name}", epoch_timings(hist))
    write_csv(
        f"plots/train_attention/{name}.csv",
        [{"epoch": h["epoch"], "train_loss": h["train_loss"], "test_hard_acc": h["test_hard_acc"]} for h in hist],
    )
    print(
        f"{name} [{rt.describe()}]: hard={m['test_hard']['acc']:.4f} easy={m['test_easy']['acc']:.4f} "
        f"val={m['val']['acc']:.4f}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: train_attention.py <run name | vit_frozen>")
    run_stage(f"train-attention@{sys.argv[1]}", lambda p: main(p, sys.argv[1]))
