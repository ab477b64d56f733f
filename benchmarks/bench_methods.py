"""Benchmark: images/s of every debiasing method, attacked images/s (FGSM, PGD), maps/s of every
attribution method on the shared ConvNet and on the tiny ViT, on this machine.

    python benchmarks/bench_methods.py [--n 10000]      (needs data/dataset: dvc repro -s make-dataset)
"""

import argparse
import dataclasses
import json
import time

from shortcutlab.attacks import attack
from shortcutlab.attribution import METHODS as ATTR
from shortcutlab.attribution import applicable, attribute_batched, make
from shortcutlab.data import load_splits
from shortcutlab.debias import train_method
from shortcutlab.models import build
from shortcutlab.params import load
from shortcutlab.runtime import resolve

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000, help="training images per method (one epoch)")
    args = ap.parse_args()
    p = load()
    rt, common = resolve(p["compute"]), p["train_debiased"]
    s = load_splits("data/dataset", rt.device, names=("train", "test_hard"))
    train = s["train"].subset(slice(0, args.n))
    out = {"runtime": rt.describe(), "debias_images_per_s": {}, "debias_wall_s": {}}
    for m in common.methods:
        cfg = dataclasses.replace(common.method(m), epochs=1)
        t0 = time.perf_counter()
        train_method(m, cfg, common, train, rt, 0, {})
        wall = time.perf_counter() - t0
        out["debias_wall_s"][m] = wall
        out["debias_images_per_s"][m] = args.n / wall
        print(m, f"{args.n / wall:.0f} img/s", flush=True)
    model = rt.prepare(build("convnet", widths=list(common.convnet_widths))).eval()
    x, y = s["test_hard"].images(slice(0, 1000)), s["test_hard"].y[:1000]
    eps = list(p["attack"].eps)
    for meth in ("fgsm", "pgd"):
        t0 = time.perf_counter()
        attack(model, x, y, eps, rt, method=meth, steps=p["attack"].steps)
        out[f"attack_{meth}_images_per_s"] = len(x) * len(eps) / (time.perf_counter() - t0)
    out["maps_per_s"] = {}
    vit = rt.prepare(build("vit", **p["train_attention"].arch_kwargs("vit"))).eval()
    with rt.autocast():
        for arch, net in (("convnet", model), ("vit", vit)):
            for name in applicable(ATTR, net):
                t0 = time.perf_counter()
                attribute_batched(make(name, net), rt.input(x), y)
                out["maps_per_s"][f"{arch}/{name}"] = len(x) / (time.perf_counter() - t0)
    print(json.dumps(out, indent=2))
