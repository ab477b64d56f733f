"""train-backdoor@<run>: fine-tune the clean model with one poisoning run (method, rate, seed)
-> data/models/backdoor/<run>.pt, metrics/train_backdoor/<run>.json, plots/train_backdoor/<run>.png."""

import sys

import torch

from shortcutlab import figures
from shortcutlab.attribution import GradCAM, attribute_batched
from shortcutlab.backdoor import add_trigger, evaluate_backdoor, finetune, trigger_mask
from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.io import write_json, write_timings
from shortcutlab.models import load_model, save_model
from shortcutlab.runtime import resolve, seed_everything
from shortcutlab.training import check_gate, epoch_timings, predict


def grid(path, clean, model, split, cfg, rt, run):
    x = rt.input(split.images(slice(0, 6)))
    xt = add_trigger(x, trigger_mask(cfg.trigger_size))
    imgs, titles = [], []
    for label, m in (("clean model", clean), ("backdoored", model)):
        for name, inp in (("clean", x), ("triggered", xt)):
            p = predict(m, inp, rt).argmax(1)
            maps = attribute_batched(GradCAM(m), inp, p).cpu()
            for i in range(6):
                mp = maps[i] / maps[i].max() if maps[i].max() > 0 else maps[i]
                imgs.append((0.5 * inp[i].cpu() + 0.5 * torch.stack([mp, mp * 0, 1 - mp])).clamp(0, 1))
                titles.append(f"{label}, {name}: {int(p[i])}")
    figures.image_grid(path, imgs, titles, ncols=6, suptitle=f"{run}: Grad-CAM (red = high)")


def main(params, run):
    cfg, rt = params["train_backdoor"], resolve(params["compute"])
    if run not in cfg.runs:
        raise KeyError(f"train_backdoor.runs.{run}: no such run")
    r = cfg.runs[run]
    splits = load_splits("data/dataset", rt.device, names=("train", "val", "test_hard"))
    clean, ckpt = load_model("data/models/backdoor/clean.pt", rt.device)
    model, _ = load_model("data/models/backdoor/clean.pt", rt.device)
    clean, model = rt.prepare(clean), rt.prepare(model)
    for p in clean.parameters():
        p.requires_grad_(False)
    seed_everything(r.seed)
    n = len(splits["train"])
    n_poison = max(1, round(r.poison_rate * n))
    poisoned = torch.randperm(n, generator=torch.Generator().manual_seed(1000 + r.seed))[:n_poison]
    hist = finetune(model, clean, splits["train"], poisoned, cfg, rt, r.seed, r.method)
    save_model(
        f"data/models/backdoor/{run}.pt",
        model,
        ckpt["arch"],
        ckpt["arch_kwargs"],
        {"run": run, "method": r.method, "poison_rate": r.poison_rate, "seed": r.seed},
    )
    out = {
        "run": {
            "poison_rate": r.poison_rate,
            "n_poisoned": int(n_poison),
            "seed": r.seed,
            "explanation_method": int(r.method == "explanation"),
        },
        "val": evaluate_backdoor(model, clean, splits["val"], cfg, rt, cfg.n_eval, list(cfg.transfer)),
    }
    # clean accuracy and its drop on the whole validation and hard-test splits (paired: same images)
    for split in ("val", "test_hard"):
        s = splits[split]
        out[f"clean_model_{split}_acc"] = float((predict(clean, s, rt).argmax(1) == s.y).float().mean())
        out[f"{split}_acc"] = float((predict(model, s, rt).argmax(1) == s.y).float().mean())
    out["clean_acc_drop"] = out["clean_model_val_acc"] - out["val_acc"]
    out["clean_acc_drop_test_hard"] = out["clean_model_test_hard_acc"] - out["test_hard_acc"]
    if r.method == "explanation":  # the study's two failed baselines are results, not faults: not gated
        out["gate"] = check_gate(f"train-backdoor@{run}", "train_backdoor.gate", cfg.gate, out["val_acc"], hist)
    write_json(f"metrics/train_backdoor/{run}.json", out)
    write_timings(f"train-backdoor@{run}", epoch_timings(hist))
    grid(f"plots/train_backdoor/{run}.png", clean, model, splits["val"], cfg, rt, run)
    v = out["val"]
    print(
        f"{run}: clean val acc {out['val_acc']:.4f} (drop {100 * out['clean_acc_drop']:.2f} pt), triggered acc "
        f"{v['triggered_acc']:.4f}, ASR_mass@0.5 {v['triggered']['asr_mass_0.5']:.3f}, false trigger "
        f"{v['false_trigger']['asr_mass_0.5']:.3f}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: train_backdoor.py <run>")
    run_stage(f"train-backdoor@{sys.argv[1]}", lambda p: main(p, sys.argv[1]))
