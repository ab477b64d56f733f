"""Benchmark: PGD with and without early stopping on a trained model (same success rates, fewer steps).

    python benchmarks/bench_attack.py [checkpoint] [--n 256] [--steps 40]
Run it alone (two torch processes at once slow each other down)."""

from __future__ import annotations

import argparse
import time

from shortcutlab.attacks import attack, untargeted_metrics
from shortcutlab.data import load_splits
from shortcutlab.models import load_model
from shortcutlab.params import Compute
from shortcutlab.runtime import resolve


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", nargs="?", default="data/models/debiased/consistency_convnet")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--steps", type=int, default=40)
    a = ap.parse_args()
    rt = resolve(Compute(device="auto", precision="auto", threads=0))
    s = load_splits("data/dataset", rt.device, names=("test_hard",))["test_hard"]
    model, _ = load_model(a.checkpoint, rt.device)
    model = rt.prepare(model)
    x, y = s.images(slice(0, a.n)), s.y[: a.n]
    eps = [0.01, 0.02, 0.03, 0.05, 0.07, 0.1]
    clean = model(rt.input(x)).argmax(1)
    out = {}
    for early in (False, True):
        t0 = time.perf_counter()
        res = attack(model, x, y, eps, rt, steps=a.steps, early_stop=early)
        secs = time.perf_counter() - t0
        out[early] = [r["success_on_clean_correct"] for r in untargeted_metrics(res, x, y, clean)]
        print(f"early_stop={early}: {secs:.1f} s, success by eps {[round(v, 3) for v in out[early]]}")
    print("identical success rates:", out[False] == out[True])


if __name__ == "__main__":
    main()
