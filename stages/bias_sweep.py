"""bias-sweep@<bias>-<method>: one method (or ``lazy``) on every seed of ``bias_sweep.seeds`` on the dataset of
one bias strength (data/bias_sweep/<bias>/) -> metrics/bias_sweep/<bias>/<method>.json."""

import sys

from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.io import write_json
from shortcutlab.runtime import resolve
from shortcutlab.sweep import sweep_method


def main(params, bias: str, method: str):
    if float(bias) not in params["bias_sweep"].biases:
        raise KeyError(f"bias_sweep.biases: {bias} is not configured (configured: {params['bias_sweep'].biases})")
    if method != "lazy" and method not in params["bias_sweep"].methods:
        raise KeyError(f"bias_sweep.methods: {method!r} is not configured")
    rt = resolve(params["compute"])
    splits = load_splits(f"data/bias_sweep/{bias}", rt.device)
    m = sweep_method(params, float(bias), method, splits, rt)
    write_json(f"metrics/bias_sweep/{bias}/{method}.json", m)
    h = m["summary"]["hard_acc"]
    print(f"bias {bias} {method} [{rt.describe()}]: hard={h['mean']:.4f}±{h['std']:.4f} ({m['n_seeds']} seeds)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: bias_sweep.py <bias> <method | lazy>")
    run_stage(f"bias-sweep@{sys.argv[1]}-{sys.argv[2]}", lambda p: main(p, sys.argv[1], sys.argv[2]))
