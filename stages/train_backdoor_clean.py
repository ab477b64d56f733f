"""train-backdoor-clean: the clean model the attacker fine-tunes (ConvNet with dilated context convs, so
that the Grad-CAM cells of the target region can see the trigger) -> data/models/backdoor/clean.pt."""

import torch

from shortcutlab.backdoor import receptive_field, target_mask, trigger_mask, triggered_accuracy
from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.evaluation import evaluate_model
from shortcutlab.io import write_json, write_timings
from shortcutlab.models import build, save_model
from shortcutlab.runtime import resolve, seed_everything
from shortcutlab.training import FitConfig, check_gate, epoch_timings, fit


def main(params):
    cfg, rt = params["train_backdoor"], resolve(params["compute"])
    splits = load_splits("data/dataset", rt.device)
    seed_everything(cfg.seed)
    kw = {"widths": list(cfg.widths), "context": 2}
    model = build("convnet", **kw)
    # geometry check: do the target-region cells of the Grad-CAM map see the trigger pixels?
    grid = 7
    t = target_mask(cfg.target_size)
    cells = [(i, j) for i in range(grid) for j in range(grid) if t[i * 4 : (i + 1) * 4, j * 4 : (j + 1) * 4].any()]
    tm = trigger_mask(cfg.trigger_size)
    rows, cols = torch.nonzero(tm, as_tuple=True)
    probe = (slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1))
    sees = receptive_field(build("convnet", **kw), model.cam_layer, cells, probe)
    plain_sees = receptive_field(build("convnet", widths=list(cfg.widths)), "layer3", cells, probe)
    hist = fit(
        model,
        splits["train"],
        FitConfig(cfg.clean_epochs, cfg.clean_lr, cfg.batch_size, cfg.seed, schedule="cosine"),
        rt,
        desc="backdoor/clean",
    )
    m = evaluate_model(model, splits, rt)
    m["gate"] = check_gate("train-backdoor-clean", "train_backdoor.gate", cfg.gate, model, splits["val"], rt)
    save_model("data/models/backdoor/clean.pt", model, "convnet", kw, {"seed": cfg.seed})
    # what the trigger's occlusion alone costs a model with no backdoor (the reference for the runs' trigger cost)
    m["triggered_whole"] = {s: triggered_accuracy(model, splits[s], cfg, rt) for s in ("val", "test_hard")}
    m["geometry"] = {
        "cam_grid": grid,
        "target_cells": len(cells),
        "target_cells_see_trigger": int(sees),
        "without_context_convs_target_cells_see_trigger": int(plain_sees),
    }
    write_json("metrics/train_backdoor/clean.json", m)
    write_timings("train-backdoor-clean", epoch_timings(hist))
    print(
        f"clean model: val={m['val']['acc']:.4f} hard={m['test_hard']['acc']:.4f}; target cells see trigger: "
        f"{sees} (without context convs: {plain_sees})"
    )


if __name__ == "__main__":
    run_stage("train-backdoor-clean", main)
