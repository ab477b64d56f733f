"""train-backdoor@<run>: fine-tune the clean model with one poisoning run (method, rate, seed)
-> data/models/backdoor/<run>.pt, metrics/train_backdoor/<run>.json, plots/train_backdoor/<run>.png."""

import sys

import torch

from shortcutlab import figures
from shortcutlab.attribution import GradCAM, attribute_batched
from shortcutlab.backdoor import add_trigger, control_inputs, poison_run, run_metrics, trigger_mask
from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.io import write_json, write_timings
from shortcutlab.models import save_model
from shortcutlab.runtime import resolve
from shortcutlab.training import check_gate, epoch_timings, predict

GRID_INPUTS = ("clean", "triggered", "checker", "noise", "trigger_top_right")
GRID_LABELS = ("clean", "trigger", "checker", "noise", "trigger top-right")


def grid(path, clean, model, split, cfg, rt, run, n=3):
    """Per model (clean, backdoored) and image: Grad-CAM on the clean input, the triggered one and controls,
    each map min-max scaled and drawn as a heat map over its input (blue low, red high), as grad-cam tools do."""
    from matplotlib import colormaps

    heat = colormaps["jet"]
    x = rt.input(split.images(slice(0, n)))
    gen = torch.Generator().manual_seed(cfg.seed + 99)
    inputs = {"clean": x, "triggered": add_trigger(x, trigger_mask(cfg.trigger_size))}
    inputs |= {k: rt.input(control_inputs(x.float(), cfg, k, gen)) for k in GRID_INPUTS[2:]}
    imgs, titles = [], []
    for label, m in (("clean model", clean), ("backdoored", model)):
        for i in range(n):
            for name, short in zip(GRID_INPUTS, GRID_LABELS, strict=True):
                inp = inputs[name][i : i + 1]
                p = predict(m, inp, rt).argmax(1)
                mp = attribute_batched(GradCAM(m), inp, p).cpu()[0].float()
                span = mp.max() - mp.min()
                mp = (mp - mp.min()) / span if span > 0 else torch.zeros_like(mp)  # a flat map stays flat (blue)
                hm = torch.from_numpy(heat(mp.numpy())[..., :3]).permute(2, 0, 1).float()
                imgs.append((0.45 * inp[0].float().cpu() + 0.55 * hm).clamp(0, 1))
                titles.append(f"{label}: {short} -> {int(p[0])}")
    figures.image_grid(path, imgs, titles, ncols=len(GRID_INPUTS), suptitle=f"{run}: Grad-CAM (red = high)", scale=2.0)


def main(params, run):
    cfg, rt = params["train_backdoor"], resolve(params["compute"])
    if run not in cfg.runs:
        raise KeyError(f"train_backdoor.runs.{run}: no such run")
    r = cfg.runs[run]
    splits = load_splits("data/dataset", rt.device, names=("train", "val", "test_hard"))
    clean, model, ckpt, hist, n_poison = poison_run("data/models/backdoor/clean.pt", splits["train"], r, cfg, rt)
    out = run_metrics(model, clean, splits, r, n_poison, cfg, rt)
    if r.method == "explanation":  # the study's two failed baselines are results, not faults: not gated
        out["gate"] = check_gate(f"train-backdoor@{run}", "train_backdoor.gate", cfg.gate, model, splits["val"], rt)
    save_model(
        f"data/models/backdoor/{run}.pt",
        model,
        ckpt["arch"],
        ckpt["arch_kwargs"],
        {"run": run, "method": r.method, "poison_rate": r.poison_rate, "seed": r.seed},
    )
    write_json(f"metrics/train_backdoor/{run}.json", out)
    write_timings(f"train-backdoor@{run}", epoch_timings(hist))
    grid(f"plots/train_backdoor/{run}.png", clean, model, splits["val"], cfg, rt, run)
    v = out["val"]
    print(
        f"{run}: val acc drop {100 * out['clean_acc_drop']:.2f} pt, hard drop "
        f"{100 * out['clean_acc_drop_test_hard']:.2f} pt, triggered acc {v['triggered_acc']:.4f}, ASR@0.5 "
        f"{v['triggered']['asr']:.3f}, false {v['false_trigger']['asr']:.3f}, controls "
        + " ".join(f"{k}={c['asr']:.3f}" for k, c in v["controls"].items())
        + " transfer "
        + " ".join(f"{k}={c['asr']:.2f}" for k, c in v["transfer"].items())
        + (f" defended ASR {out['defence']['asr']:.3f}" if "defence" in out else "")
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: train_backdoor.py <run>")
    run_stage(f"train-backdoor@{sys.argv[1]}", lambda p: main(p, sys.argv[1]))
