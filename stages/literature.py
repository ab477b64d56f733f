"""The LfF Colored-MNIST protocol (``literature``; off unless ``literature.aligned`` lists ratios):

lff-dataset@<aligned>                 -> data/literature/<aligned>/{train,test}.npz,
                                         metrics/bias_sweep/lff_protocol/<aligned>/dataset.json
lff-train@<aligned>-<method>-<scaling> -> metrics/bias_sweep/lff_protocol/<aligned>/<method>-<scaling>.json,
                                         plots/bias_sweep/lff_protocol/<aligned>/<method>-<scaling>.csv
"""

import sys

from shortcutlab.cli import run_stage
from shortcutlab.data import check_raw, load_splits
from shortcutlab.io import read_npz, write_csv, write_json, write_npz
from shortcutlab.literature import SPLITS, build_protocol, run_protocol, split_stats
from shortcutlab.runtime import resolve


def _aligned(cfg, text: str) -> float:
    if float(text) not in cfg.aligned:
        raise KeyError(f"literature.aligned: {text} is not configured (configured: {cfg.aligned})")
    return float(text)


def dataset(params, text: str):
    cfg = params["literature"]
    aligned = _aligned(cfg, text)
    raw = read_npz("data/raw/mnist.npz")
    check_raw(raw)
    splits = build_protocol(raw, cfg, aligned)
    for name in SPLITS:
        write_npz(f"data/literature/{text}/{name}.npz", **splits[name])
    stats = {name: split_stats(splits[name]) for name in SPLITS}
    write_json(f"metrics/bias_sweep/lff_protocol/{text}/dataset.json", stats)
    print({k: (v["n"], round(v["aligned_share"], 4)) for k, v in stats.items()})


def train(params, text: str, method: str, scaling: str):
    cfg, rt = params["literature"], resolve(params["compute"])
    aligned = _aligned(cfg, text)
    if method not in cfg.methods:
        raise KeyError(f"literature.methods: {method!r} is not configured (configured: {', '.join(cfg.methods)})")
    if scaling not in cfg.scaling:
        raise KeyError(f"literature.scaling: {scaling!r} is not configured (configured: {cfg.scaling})")
    splits = load_splits(f"data/literature/{text}", rt.device, names=SPLITS)
    metrics, curve = run_protocol(cfg, aligned, method, scaling, splits, rt)
    write_json(f"metrics/bias_sweep/lff_protocol/{text}/{method}-{scaling}.json", metrics)
    write_csv(f"plots/bias_sweep/lff_protocol/{text}/{method}-{scaling}.csv", curve)
    u = metrics["summary"]["unbiased_acc"]
    print(f"{text} {method} {scaling} [{rt.describe()}]: unbiased={u['mean']:.4f}±{u['std']:.4f}")


if __name__ == "__main__":
    if len(sys.argv) == 2:
        run_stage(f"lff-dataset@{sys.argv[1]}", lambda p: dataset(p, sys.argv[1]))
    elif len(sys.argv) == 4:
        name = f"lff-train@{sys.argv[1]}-{sys.argv[2]}-{sys.argv[3]}"
        run_stage(name, lambda p: train(p, *sys.argv[1:]))
    else:
        sys.exit("usage: literature.py <aligned> [<method> <scaling>]")
