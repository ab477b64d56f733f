"""Dead latents of a TopK SAE against its dictionary size: can any SAE of this layer reach <= 10% dead latents
with explained variance >= 0.95 and L0 <= 10% of the dictionary (issue 18)?

Trains the pipeline's TopK SAE (sae.py, with AuxK and resampling; params.yaml's sae.* for everything but the
dictionary size m and k) on one model's standardised hidden activations, for each m of --sizes with
k = --k or floor(m / 10), and prints held-out (validation) dead %, explained variance and L0 as a markdown
table (plus JSON with --json). Reads data/dataset and the model checkpoint: run after `dvc repro`.

    python scripts/sae_sweep.py --model data/models/lazy.pt --sizes 64 128 180 256
    python scripts/sae_sweep.py --configs 64:6 128:12 180:16 256:16 256:25   # m:k pairs
    python scripts/sae_sweep.py --configs 64:6 --epochs 100 300 600   # convergence of one SAE with training length

Each row also says whether the SAE converged by the report's rule (report_analysis.CONVERGED: held-out readouts
logged every epoch; over a tenth of the epochs ending where the learning-rate decay starts) and the range of its
dead-latent count over that window.
"""

from __future__ import annotations

import argparse
import json

import torch

from shortcutlab.data import load_splits
from shortcutlab.models import load_model
from shortcutlab.params import load
from shortcutlab.report_analysis import is_converged
from shortcutlab.runtime import resolve
from shortcutlab.sae import convergence, hidden_acts, sae_metrics, train_sae


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="data/models/lazy.pt")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 180, 256])
    ap.add_argument("--k", type=int, nargs="*", default=None, help="active latents (default: m // 10 and 16)")
    ap.add_argument("--configs", nargs="*", default=None, help="m:k pairs instead of --sizes x --k")
    ap.add_argument("--epochs", type=int, nargs="+", default=None, help="default: params.yaml sae.epochs")
    ap.add_argument("--lr-decay", type=float, default=None, help="default: params.yaml sae.lr_decay")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    p = load("params.yaml")
    cfg, rt = p["sae"], resolve(p["compute"])
    splits = load_splits("data/dataset", rt.device)
    model, _ = load_model(a.model, rt.device)
    tr = hidden_acts(model, splits["train"].images(), rt=rt).cpu()
    va = hidden_acts(model, splits["val"].images(), rt=rt).cpu()
    mu, sigma = tr.mean(0), tr.std(0).clamp_min(1e-6)
    live_units = int((tr.std(0) > 1e-6).sum())
    rows = []
    grid = [(m, k) for m in a.sizes for k in sorted(set(a.k or [max(1, m // 10), 16]))]
    if a.configs:
        grid = [tuple(int(v) for v in c.split(":")) for c in a.configs]
    decay = cfg.lr_decay if a.lr_decay is None else a.lr_decay
    print(
        "| m | k | epochs | dead % | explained variance | L0 (share of m) | all three targets | converged "
        "| dead count, judged window |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (m, k), epochs in ((g, e) for g in grid for e in (a.epochs or [cfg.epochs])):
        sae, hist = train_sae(
            (tr - mu) / sigma,
            "topk",
            m,
            k=k,
            l1=cfg.l1,
            epochs=epochs,
            lr=cfg.lr,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            resample_every=cfg.resample_every,
            lr_decay=decay,
            monitor=(va - mu) / sigma,
        )
        c = convergence(hist)
        end = c["window_end_epoch"]
        tail = [round(h["val_dead_fraction"] * m) for h in hist[max(0, end - 1 - c["tail_epochs"]) : end]]
        with torch.no_grad():
            h = sae_metrics(sae.eval(), (va - mu) / sigma)
        rows.append(
            {"m": m, "k": k, "epochs": epochs, **{key: h[key] for key in ("dead_fraction", "explained_variance", "l0")}}
        )
        rows[-1] |= {"converged": is_converged(c, m), "dead_count_tail": [min(tail), max(tail)]}
        r = rows[-1]
        ok = r["dead_fraction"] <= 0.10 and r["explained_variance"] >= 0.95 and r["l0"] <= 0.10 * m
        r["meets_targets"] = ok
        print(
            f"| {m} | {k} | {epochs} | {100 * r['dead_fraction']:.1f} | {r['explained_variance']:.4f} | "
            f"{r['l0']:.1f} ({100 * r['l0'] / m:.1f}%) | {'yes' if ok else 'no'} | "
            f"{'yes' if r['converged'] else 'no'} | {min(tail)}–{max(tail)} |",
            flush=True,
        )
    print(f"layer: {tr.shape[1]} units, {live_units} ever active on the training split")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": a.model, "live_units": live_units, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
