"""Benchmark: the color-consistency recipe's color jitter through the C++ kernel (``augment.extension``) against
PyTorch's operators (``augment.jitter_ops``), the same bits either way.

Two tables. The jitter alone: ms per 256-image batch, operators and kernel, the median of ``--repeat`` timings.
The recipes that use it: one epoch of ``--n`` training images of each consistency method of params.yaml
(``consistency``: the two-conv network, ``consistency_convnet``: the shared ConvNet), once through the operators
and once through the kernel, alternating, training images/s (median of ``--repeat``) and whether both runs
trained the same bytes. Needs data/dataset (``dvc repro -s make-dataset``). Run it alone: two torch processes at
once slow each other.

    python benchmarks/bench_jitter.py [--n 10000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import torch

from shortcutlab import augment
from shortcutlab.data import load_splits
from shortcutlab.debias import train_method
from shortcutlab.params import load
from shortcutlab.runtime import resolve

KERNEL = augment.extension


def use_kernel(on: bool) -> None:
    augment.extension = KERNEL if on else (lambda: None)


def jitter_ms(x: torch.Tensor, kw: dict, on: bool, calls: int = 50) -> float:
    use_kernel(on)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        augment.color_jitter(x, g, **kw)
    t0 = time.perf_counter()
    for _ in range(calls):
        augment.color_jitter(x, g, **kw)
    return (time.perf_counter() - t0) / calls * 1e3


def train_once(method: str, common, train, rt, on: bool) -> tuple[float, torch.Tensor]:
    use_kernel(on)
    cfg = dataclasses.replace(common.method(method), epochs=1)
    t0 = time.perf_counter()
    model = train_method(method, cfg, common, train, rt, 0, {})[0]
    secs = time.perf_counter() - t0
    weights = torch.cat([p.detach().float().flatten() for p in model.state_dict().values() if p.is_floating_point()])
    return len(train) / secs, weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10000, help="training images per recipe run (one epoch)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if KERNEL() is None:
        raise SystemExit("bench_jitter: the kernel is not available here (see the warning above)")
    p = load()
    rt, common = resolve(p["compute"]), p["train_debiased"]
    train = load_splits("data/dataset", rt.device, names=("train",))["train"].subset(slice(0, args.n))
    kw = {
        k: v
        for k, v in dataclasses.asdict(common.method("consistency")).items()
        if k in ("brightness", "contrast", "saturation", "hue", "extreme_frac")
    }
    x = rt.input(train.images(slice(0, 256)))
    out = {"runtime": rt.describe(), "jitter_ms_per_256": {}, "recipes": {}}
    for name, on in (("operators", False), ("kernel", True)):
        out["jitter_ms_per_256"][name] = statistics.median(jitter_ms(x, kw, on) for _ in range(args.repeat))
    j = out["jitter_ms_per_256"]
    print(
        f"color jitter, 256 images: operators {j['operators']:.2f} ms, kernel {j['kernel']:.2f} ms "
        f"({j['operators'] / j['kernel']:.1f}x)",
        flush=True,
    )
    for method in [m for m in ("consistency", "consistency_convnet") if m in common.methods]:
        rates, same = {"operators": [], "kernel": []}, True
        for _ in range(args.repeat):
            ref = None
            for name, on in (("operators", False), ("kernel", True)):
                rate, w = train_once(method, common, train, rt, on)
                rates[name].append(rate)
                same &= ref is None or torch.equal(w.view(torch.int32), ref.view(torch.int32))
                ref = w
        row = {k: statistics.median(v) for k, v in rates.items()} | {"same_bytes": same}
        out["recipes"][method] = row
        print(
            f"{method}: operators {row['operators']:.0f} img/s, kernel {row['kernel']:.0f} img/s "
            f"({row['kernel'] / row['operators']:.2f}x), same trained bytes: {same}",
            flush=True,
        )
    use_kernel(True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
