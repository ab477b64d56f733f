"""Benchmark: train the lazy model the project's way vs the way the study's report wrote it.

Study way, rebuilt from the study's report (../shared/study, Task 0 and Task 1): its BiasedMNIST wraps
torchvision's MNIST (each item a PIL image, turned into a tensor by transforms.ToTensor) and colors each
digit in __getitem__ (per-sample torch ops, Python RNG); a DataLoader with batch 64, no workers, fp32; the
loop keeps the report's running loss and accuracy (`loss.item()`, `.sum().item()` every batch). The real
torchvision.datasets.MNIST class reads our MNIST digits, written to a temporary folder in its raw format.

Project way: uint8 tensors in memory, index batches, the project's
training loop (bf16 + channels_last where the CPU supports it). Both train LazyCNN for the same epochs
on the same MNIST digits and are evaluated on the same hard/easy test. The project's native kernels are built
(or loaded) by an untimed warm-up step first: a build inside the timed epochs would be counted as training.

    python benchmarks/bench_train_lazy.py --epochs 2 [--parts]   (needs data/raw and data/dataset: dvc repro)

``--parts`` adds where one training step of the project's loop goes (batch gather, forward, backward, Adam,
running totals), in the configured precision and in fp32.
"""

import argparse
import json
import random
import struct
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

from shortcutlab.data import load_splits
from shortcutlab.io import read_npz
from shortcutlab.models import build
from shortcutlab.params import Compute, load
from shortcutlab.runtime import resolve, seed_everything
from shortcutlab.training import FitConfig, accuracy, fit


def write_idx(root, gray, labels):
    """Write digits in MNIST's raw idx format, where torchvision.datasets.MNIST(download=False) reads them."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    n, h, w = gray.shape
    (raw / "train-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, h, w) + gray.tobytes())
    (raw / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.astype("uint8").tobytes())
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # present, never read (train=True)
        (raw / name).write_bytes(b"")


class StudyBiasedMNIST(Dataset):
    """The study's BiasedMNIST: a torchvision MNIST item (PIL), ToTensor, colored on the fly in __getitem__."""

    def __init__(self, mnist, palette):
        self.mnist, self.palette, self.to_tensor = mnist, [tuple(c) for c in palette], transforms.ToTensor()

    def __len__(self):
        return len(self.mnist)

    def __getitem__(self, i):
        img, label = self.mnist[i]
        img = self.to_tensor(img)
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
    with tempfile.TemporaryDirectory() as root:
        write_idx(root, raw["train_x"], raw["train_y"])
        mnist = datasets.MNIST(root, train=True, download=False)
        loader = DataLoader(StudyBiasedMNIST(mnist, palette), batch_size=64, shuffle=True)
        t0 = time.perf_counter()
        n = 0
        for _ in range(epochs):
            model.train()
            running_loss, correct, total = 0.0, 0, 0
            for x, y in loader:
                opt.zero_grad()
                out = model(x)
                loss = F.cross_entropy(out, y)
                loss.backward()
                opt.step()
                running_loss += loss.item()
                correct += (out.max(1)[1] == y).sum().item()
                total += len(y)
            n += total
    secs = time.perf_counter() - t0
    fp32 = resolve(Compute(device="cpu", precision="fp32", threads=0))
    return {
        "images_per_s": n / secs,
        "seconds": secs,
        "hard_acc": accuracy(model, splits["test_hard"], fp32),
        "easy_acc": accuracy(model, splits["test_easy"], fp32),
    }


def warm_up(rt) -> None:
    """One forward and backward of a throwaway lazy model, untimed: the first use of a native kernel builds it
    (≈ 6 s, once per environment: ``shortcutlab.native``), which must not land inside the timed epochs."""
    model = rt.prepare(build("lazy"))
    with rt.autocast():
        model(rt.input(torch.zeros(2, 3, 28, 28, device=rt.device))).float().sum().backward()


def project_way(splits, epochs, compute):
    rt = resolve(compute)
    warm_up(rt)
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


def step_parts(train, compute, batch_size: int) -> dict:
    """Where one epoch of the project's loop goes, per step (ms): batch gather + conversion, forward + loss (and
    the finiteness check), backward, the Adam step, the running totals; the loop of ``training._epoch``, timed
    piece by piece over one epoch after a warm-up epoch."""
    from shortcutlab.optim import Adam

    rt = resolve(compute)
    seed_everything(0)
    model = rt.prepare(build("lazy")).train()
    opt = Adam(list(model.parameters()), lr=1e-3)
    order = torch.randperm(len(train))
    parts = dict.fromkeys(("data", "forward", "backward", "adam", "totals"), 0.0)
    for record in (False, True):
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            t = [time.perf_counter()]
            x, y = rt.input(train.images(idx)), train.y[idx]
            t.append(time.perf_counter())
            with rt.autocast():
                logits = model(x)
                loss = F.cross_entropy(logits.float(), y)
            bool(torch.isfinite(loss))
            t.append(time.perf_counter())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            t.append(time.perf_counter())
            opt.step()
            t.append(time.perf_counter())
            F.cross_entropy(logits.detach().float(), y, reduction="sum")
            (logits.detach().argmax(1) == y).sum()
            t.append(time.perf_counter())
            if record:
                for k, a, b in zip(parts, t[:-1], t[1:], strict=True):
                    parts[k] += b - a
    steps = -(-len(order) // batch_size)
    out = {k: 1e3 * v / steps for k, v in parts.items()}
    return {"precision": rt.describe(), "batch_size": batch_size, "ms_per_step": out, "step_ms": sum(out.values())}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--parts", action="store_true", help="also time each part of the project's training step")
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
    if args.parts:
        bs = load()["train_lazy"].batch_size
        out["project_step_parts"] = [
            step_parts(splits["train"], c, bs)
            for c in (load()["compute"], Compute(device="cpu", precision="fp32", threads=0))
        ]
    print(json.dumps(out, indent=2))
