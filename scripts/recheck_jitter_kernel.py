"""Independent re-check of the color jitter kernel (session 24): replay every color_jitter call that the
configured consistency stages make (train-debiased's consistency methods, train-attention's consistency runs, the
bias sweep's), in fit's sample order with the objective's generator, through the C++ kernel and through PyTorch's
operators, and count the values that differ. 0 everywhere means those stages' models are the bytes they would be
without the kernel. Needs the datasets (dvc repro -s make-dataset, and bias-dataset@* for the sweep).

    python scripts/recheck_jitter_kernel.py [--json out.json]
"""

import argparse
import json
import time

import torch

from shortcutlab import augment
from shortcutlab.data import load_split
from shortcutlab.params import load
from shortcutlab.runtime import resolve

JITTER = ("brightness", "contrast", "saturation", "hue", "extreme_frac")


def runs(p):
    """(name, dataset file, epochs, seeds, jitter config) of every consistency run the params configure."""
    td, ta, sweep = p["train_debiased"], p["train_attention"], p["bias_sweep"]
    for m, cfg in td.methods.items():
        if hasattr(cfg, "extreme_frac"):
            yield f"train-debiased@{m}", "data/dataset/train.npz", cfg.epochs, td.seeds_for(m), cfg
            for b in sweep.biases if m in sweep.methods else []:
                yield f"bias-sweep@{b}-{m}", f"data/bias_sweep/{b}/train.npz", cfg.epochs, sweep.seeds, cfg
    for name, r in ta.runs.items():
        if r.method == "consistency":
            yield f"train-attention@{name}", "data/dataset/train.npz", r.epochs, r.seeds, ta.consistency


def replay(path, epochs, seeds, cfg, batch, rt, kernel) -> dict:
    train = load_split(path)
    kw = {k: getattr(cfg, k) for k in JITTER}
    calls = images = differ = 0
    for seed in seeds:
        order_gen = torch.Generator().manual_seed(seed)  # fit's sampler
        ga, gb = (torch.Generator().manual_seed(seed + 7919) for _ in range(2))  # the Consistency objective's
        for _ in range(epochs):
            order = torch.randperm(len(train), generator=order_gen)
            for s in range(0, len(order), batch):
                x = rt.input(train.images(order[s : s + batch]))
                augment.extension = kernel
                a = augment.color_jitter(x, ga, **kw)
                augment.extension = lambda: None
                b = augment.color_jitter(x, gb, **kw)
                differ += int((a.contiguous().view(torch.int32) != b.contiguous().view(torch.int32)).sum())
                calls += 1
                images += len(x)
    augment.extension = kernel
    return {"batches": calls, "images": images, "differing_values": differ}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the counts here")
    args = ap.parse_args()
    p = load()
    rt, kernel = resolve(p["compute"]), augment.extension
    if kernel() is None:
        raise SystemExit("recheck_jitter_kernel: the kernel is not available here (see the warning above)")
    out, t0 = {}, time.perf_counter()
    for name, path, epochs, seeds, cfg in runs(p):
        batch = p["train_debiased"].batch_size if name.startswith(("train-debiased", "bias")) else None
        batch = batch or p["train_attention"].batch_size
        out[name] = replay(path, epochs, seeds, cfg, batch, rt, kernel)
        print(name, out[name], f"{time.perf_counter() - t0:.0f} s", flush=True)
    print("differing values in all:", sum(r["differing_values"] for r in out.values()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
