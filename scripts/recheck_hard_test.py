"""Independent re-check of the debiasing and attention-model numbers: evaluate the committed models on hard
tests regenerated from other dataset seeds (new color draws, noise and stripes on the same MNIST test digits).
Seed 0 must reproduce the stage's numbers exactly; the others show how much they depend on our own test file.

    python scripts/recheck_hard_test.py [--seeds 0 11 12]      (after dvc repro / dvc pull)
"""

import argparse
import dataclasses

import torch

from shortcutlab.data import build_colored_mnist
from shortcutlab.io import read_npz
from shortcutlab.models import load_model
from shortcutlab.params import load
from shortcutlab.runtime import resolve
from shortcutlab.training import predict

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 11, 12])
    args = ap.parse_args()
    p = load()
    rt = resolve(p["compute"])
    raw = read_npz("data/raw/mnist.npz")
    paths = {
        "lazy": "data/models/lazy.pt",
        **{m: f"data/models/debiased/{m}" for m in p["train_debiased"].methods},
        **{m: f"data/models/attention/{m}.pt" for m in [*p["train_attention"].runs, "vit_frozen"]},
    }
    models = {k: rt.prepare(load_model(v, rt.device)[0]).eval() for k, v in paths.items()}
    print("hard-test accuracy % | dataset seed " + " ".join(f"{s:>7}" for s in args.seeds))
    rows = {k: [] for k in models}
    for seed in args.seeds:
        cfg = dataclasses.replace(p["dataset"], seed=seed, n_train=1, n_val=1)
        hard = build_colored_mnist(raw, cfg)["test_hard"]
        x, y = torch.from_numpy(hard["x"]).float() / 255.0, torch.from_numpy(hard["y"]).long()
        for k, m in models.items():
            rows[k].append(100 * float((predict(m, x.to(rt.device), rt).argmax(1).cpu() == y).float().mean()))
    for k, v in rows.items():
        print(f"{k:>20} | " + " ".join(f"{a:7.2f}" for a in v))
