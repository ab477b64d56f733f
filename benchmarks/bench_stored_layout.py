"""Benchmark: training batches gathered from images stored channels-last (``training.stored_for``, what ``fit``
does since session 31) against gathering NCHW images and permuting every batch to channels-last (before), the
same model bytes either way.

For each family, ``fit`` trains two epochs on ``--n`` training images (batch 128, the project's runtime: bf16 +
channels-last where the CPU computes bf16 natively; in fp32 there is nothing to compare), the two ways alternating
``--repeat`` times: the second epoch's training images/s (median; the one copy of the images per ``fit`` is timed
apart) and whether both trained the same weights, bit for bit. Needs
data/dataset (``dvc repro -s make-dataset``), or ``--synthetic`` (random images). Run it alone.

    python benchmarks/bench_stored_layout.py [--n 20000] [--repeat 3] [--families lazy two_conv attention]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from shortcutlab import training
from shortcutlab.data import Split, load_splits
from shortcutlab.models import build
from shortcutlab.params import load
from shortcutlab.runtime import resolve, seed_everything

STORED = training.stored_for


def train_once(family: str, train: Split, rt, stored: bool) -> tuple[float, torch.Tensor]:
    training.stored_for = STORED if stored else (lambda split, rt: split)
    seed_everything(0)
    model = build(family)
    hist = training.fit(model, train, training.FitConfig(epochs=2, lr=1e-3, batch_size=128, seed=0), rt)
    training.stored_for = STORED
    return hist[-1]["images_per_s"], torch.cat([p.detach().float().flatten() for p in model.state_dict().values()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--families", nargs="+", default=["lazy", "two_conv", "attention"])
    ap.add_argument("--synthetic", action="store_true", help="random images instead of data/dataset")
    ap.add_argument("--json", help="also write the table here")
    args = ap.parse_args()
    rt = resolve(load()["compute"])
    if not rt.channels_last:
        raise SystemExit(f"bench_stored_layout: the runtime is {rt.describe()}: no channels-last, nothing to compare")
    if args.synthetic:
        g = torch.Generator().manual_seed(0)
        n = args.n
        x = torch.randint(0, 256, (n, 3, 28, 28), dtype=torch.uint8, generator=g)
        y = torch.randint(0, 10, (n,), generator=g)
        train = Split(x, y, y, torch.zeros(n, dtype=torch.bool), x[:, 0], torch.rand(10, 3, generator=g))
    else:
        train = load_splits("data/dataset", names=("train",))["train"]
        train = train.subset(torch.arange(min(args.n, len(train))))
    t0 = time.perf_counter()
    STORED(train, rt)
    copy_ms = (time.perf_counter() - t0) * 1e3
    print(f"the copy of {len(train)} images, once per fit: {copy_ms:.0f} ms")
    rows = []
    for family in args.families:
        runs = {True: [], False: []}
        for _ in range(args.repeat):
            for stored in (False, True):
                runs[stored].append(train_once(family, train, rt, stored))
        same = all(torch.equal(w, runs[True][0][1]) for r in runs.values() for _, w in r)
        before, after = (statistics.median(v for v, _ in runs[s]) for s in (False, True))
        rows.append({"family": family, "permuted_images_per_s": before, "stored_images_per_s": after, "same": same})
        print(f"{family:10s} {before:9.0f} -> {after:9.0f} images/s ({after / before:.3f}x), same bytes: {same}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runtime": rt.describe(), "n": len(train), "copy_ms": copy_ms, "rows": rows}, f, indent=1)
    if not all(r["same"] for r in rows):
        raise SystemExit("bench_stored_layout: the stored layout trained other bytes")


if __name__ == "__main__":
    main()
