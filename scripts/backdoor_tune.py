"""Measure backdoor recipes without touching the pipeline: train-backdoor@<run> as the stage runs it, with
``train_backdoor`` keys overridden, printing the issue-16 targets (nothing is written).

    python scripts/backdoor_tune.py pct1-s1 pct10 --set lam_kd=24 --set defence_epochs=0
    python scripts/backdoor_tune.py pct1 --seed 3          # the same recipe on a seed the pipeline does not run

Needs data/dataset and data/models/backdoor/clean.pt (`dvc repro train-backdoor-clean`). Run it alone on the
machine: two torch processes slow each other several-fold.
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shortcutlab.backdoor import poison_run, run_metrics  # noqa: E402
from shortcutlab.data import load_splits  # noqa: E402
from shortcutlab.params import load  # noqa: E402
from shortcutlab.runtime import resolve  # noqa: E402


def line(run: str, out: dict, secs: float) -> str:
    v = out["val"]
    tr = out.get("triggered_whole", {})
    worst = max(v["controls"].items(), key=lambda kv: kv[1]["asr"])
    return (
        f"{run}: ASR {100 * v['triggered']['asr']:.1f} false {100 * v['false_trigger']['asr']:.1f} | drop val "
        f"{100 * out['clean_acc_drop']:+.2f} hard {100 * out['clean_acc_drop_test_hard']:+.2f} "
        f"(disc {out['test_hard_discordant']['clean_only']}/{out['test_hard_discordant']['backdoored_only']}) | "
        + " ".join(f"trig-clean {s} {100 * (t['triggered_acc'] - t['clean_acc']):+.2f}" for s, t in tr.items())
        + f" | worst control {worst[0]} {100 * worst[1]['asr']:.1f} | "
        + " ".join(f"{k} {100 * c['asr']:.0f}" for k, c in v["transfer"].items() if "cam" in k)
        + (f" | defended ASR {100 * out['defence']['asr']:.1f}" if "defence" in out else "")
        + f" | {secs:.0f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="train_backdoor.runs entries")
    ap.add_argument("--set", action="append", default=[], help="train_backdoor key=value (YAML value)")
    ap.add_argument("--seed", type=int, default=None, help="run each named run with this seed instead of its own")
    a = ap.parse_args()
    params = load("params.yaml")
    over = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in a.set)}
    cfg, rt = dataclasses.replace(params["train_backdoor"], **over), resolve(params["compute"])
    splits = load_splits("data/dataset", rt.device, names=("train", "val", "test_hard"))
    print("overrides:", over or "none", flush=True)
    for run in a.runs:
        t0 = time.perf_counter()
        r = cfg.runs[run] if a.seed is None else dataclasses.replace(cfg.runs[run], seed=a.seed)
        clean, model, _, _, n_poison = poison_run("data/models/backdoor/clean.pt", splits["train"], r, cfg, rt)
        out = run_metrics(model, clean, splits, r, n_poison, cfg, rt)
        name = run if a.seed is None else f"{run} (seed {a.seed})"
        print(line(name, out, time.perf_counter() - t0), flush=True)


if __name__ == "__main__":
    main()
