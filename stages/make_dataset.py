"""make-dataset: Colored MNIST (train/val biased, hard and easy tests) -> data/dataset/*.npz, and
bias-dataset@<bias>: the same dataset at another ``dataset.bias`` (the bias sweep) -> data/bias_sweep/<bias>/*.npz,
metrics/bias_sweep/<bias>/dataset.json."""

import dataclasses
import sys

import numpy as np

from shortcutlab import figures
from shortcutlab.data import SPLITS, build_colored_mnist, check_raw, split_stats
from shortcutlab.io import read_npz, write_json, write_npz

COLOR_NAMES = ["red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple", "lime", "pink"]


def sweep_dataset(params, bias: float):
    """bias-dataset@<bias>: every ``dataset`` key but ``bias`` as configured; split statistics only."""
    cfg = dataclasses.replace(params["dataset"], bias=bias)
    raw = read_npz("data/raw/mnist.npz")
    check_raw(raw)
    splits = build_colored_mnist(raw, cfg)
    for name in SPLITS:
        write_npz(f"data/bias_sweep/{bias}/{name}.npz", **splits[name])
    stats = {name: split_stats(splits[name]) for name in SPLITS}
    write_json(
        f"metrics/bias_sweep/{bias}/dataset.json",
        {k: {kk: v for kk, v in st.items() if kk != "counts"} for k, st in stats.items()},
    )
    print({k: (v["n"], round(v["dominant_rate"], 4)) for k, v in stats.items()})


def main(params):
    cfg = params["dataset"]
    raw = read_npz("data/raw/mnist.npz")
    check_raw(raw)
    splits = build_colored_mnist(raw, cfg)
    metrics = {}
    for name in SPLITS:
        write_npz(f"data/dataset/{name}.npz", **splits[name])
        st = split_stats(splits[name])
        counts = st.pop("counts")
        st["color_counts"] = {f"digit_{d}": counts[d].tolist() for d in range(10)}
        metrics[name] = st
        if name in ("train", "test_hard"):
            figures.heatmap(
                f"plots/make_dataset/cooccurrence_{name}.png",
                counts,
                "color id",
                "digit",
                title=f"digit x color counts ({name})",
            )
    write_json("metrics/make_dataset.json", metrics)
    # one sample grid: 4 rows per split x 10 digits
    imgs, titles = [], []
    for name in ("train", "test_hard", "test_easy"):
        s = splits[name]
        for d in range(10):
            i = int(np.flatnonzero(s["y"] == d)[0])
            imgs.append(s["x"][i] / 255.0)
            titles.append(f"{name}\n{d}:{COLOR_NAMES[s['color'][i]] if len(cfg.palette) == 10 else ''}")
    figures.image_grid("plots/make_dataset/samples.png", imgs, titles, ncols=10)
    print({k: (v["n"], round(v["dominant_rate"], 4)) for k, v in metrics.items()})


if __name__ == "__main__":
    from shortcutlab.cli import run_stage

    if len(sys.argv) == 2:
        b = float(sys.argv[1])
        run_stage(f"bias-dataset@{sys.argv[1]}", lambda p: sweep_dataset(p, b))
    else:
        run_stage("make-dataset", main)
