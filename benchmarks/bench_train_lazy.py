"""Benchmark: train the lazy model the project's way vs the way the study's report wrote it.

Study way: a torch Dataset that colors each image in __getitem__ (per-sample torch ops, Python RNG),
a DataLoader with batch 64, fp32. Project way: uint8 tensors in memory, index batches, the project's
training loop (bf16 + channels_last where the CPU supports it). Both train LazyCNN for the same epochs
on the same MNIST digits and are evaluated on the same hard/easy test.

    python benchmarks/bench_train_lazy.py --epochs 2   (needs data/raw and data/dataset: dvc repro)
"""

import argparse
import json
import random
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from shortcutlab.data import load_splits
from shortcutlab.io import read_npz
from shortcutlab.models import build
from shortcutlab.params import Compute, load
from shortcutlab.runtime import resolve, seed_everything
from shortcutlab.training import FitConfig, accuracy, fit


class StudyBiasedMNIST(Dataset):
    """The study's BiasedMNIST: colors each digit on the fly in __getitem__."""

    def __init__(self, gray, labels, palette):
        self.gray, self.labels, self.palette = gray, labels, [tuple(c) for c in palette]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = torch.from_numpy(self.gray[i]).float().div(255).unsqueeze(0)
        label = int(self.labels[i])
        dominant = self.palette[label]
        color = dominant if random.random() < 0.95 else random.choice([c for c in self.palette if c != dominant])
        colored = img.repeat(3, 1, 1) * torch.tensor(color, dtype=torch.float32).view(3, 1, 1)
        noise = torch.randn(3, 28, 28) * 0.05
        if random.random() < 0.5:
            stripe = torch.sin(torch.linspace(0, 10, 28))
            noise += stripe.view(1, 1, 28) * 0.03 if random.random() < 0.5 else stripe.view(1, 28, 1) * 0.03
        return (colored + noise.clamp(-0.1, 0.1)).clamp(0, 1), label


def study_way(raw, palette, epochs, splits):
    seed_everything(0)
    random.seed(0)
    model = build("lazy")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(StudyBiasedMNIST(raw["train_x"], raw["train_y"], palette), batch_size=64, shuffle=True)
    t0 = time.perf_counter()
    n = 0
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            n += len(y)
    secs = time.perf_counter() - t0
    fp32 = resolve(Compute(device="cpu", precision="fp32", threads=0))
    return {
        "images_per_s": n / secs,
        "seconds": secs,
        "hard_acc": accuracy(model, splits["test_hard"], fp32),
        "easy_acc": accuracy(model, splits["test_easy"], fp32),
    }


def project_way(splits, epochs, compute):
    rt = resolve(compute)
    seed_everything(0)
    model = build("lazy")
    cfg = load()["train_lazy"]
    t0 = time.perf_counter()
    fit(model, splits["train"], FitConfig(epochs=epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=0), rt)
    secs = time.perf_counter() - t0
    return {
        "precision": rt.describe(),
        "batch_size": cfg.batch_size,
        "images_per_s": epochs * len(splits["train"]) / secs,
        "seconds": secs,
        "hard_acc": accuracy(model, splits["test_hard"], rt),
        "easy_acc": accuracy(model, splits["test_easy"], rt),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    raw = read_npz("data/raw/mnist.npz")
    splits = load_splits("data/dataset", names=("train", "test_hard", "test_easy"))
    palette = splits["train"].palette.tolist()
    ours = project_way(splits, args.epochs, load()["compute"])
    ours_fp32 = project_way(splits, args.epochs, Compute(device="cpu", precision="fp32", threads=0))
    study = study_way(raw, palette, args.epochs, splits)
    out = {
        "epochs": args.epochs,
        "project": ours,
        "project_fp32": ours_fp32,
        "study": study,
        "speedup": ours["images_per_s"] / study["images_per_s"],
    }
    print(json.dumps(out, indent=2))
