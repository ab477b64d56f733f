"""The bias sweep: one method (or the lazy model) on every seed of ``bias_sweep.seeds``, trained on the
dataset of one bias strength with its recipe as configured in ``train_debiased.methods`` (``train_lazy``)."""

from __future__ import annotations

import dataclasses

from .data import Split
from .debias import train_seeds
from .evaluation import mean_std, seed_summary
from .lazy import train_lazy_seed
from .runtime import Runtime


def sweep_method(params: dict, bias: float, method: str, splits: dict[str, Split], rt: Runtime) -> dict:
    """Metrics of ``method`` at ``bias``: ``summary`` (mean ± std over seeds: hard, easy, val accuracy, ...)
    and ``seeds`` (each seed's accuracies). Final-epoch models; nothing is selected on a test split."""
    seeds = list(params["bias_sweep"].seeds)
    if method == "lazy":
        cfg = params["train_lazy"]
        per_seed = {}
        for s in seeds:
            _, m, _ = train_lazy_seed(cfg, s, splits, rt, run=f"bias-sweep@{bias}-lazy")
            per_seed[str(s)] = m
        summary = seed_summary(per_seed) | {
            "best_epoch_hard_acc": mean_std(r["best_epoch"]["acc"] for r in per_seed.values())
        }
        epochs = cfg.epochs
    else:
        common = params["train_debiased"]
        cfg = dataclasses.replace(common.method(method), seeds=[])  # the sweep's seeds, not the method's
        common = dataclasses.replace(common, seeds=seeds, methods={**common.methods, method: cfg})
        res = train_seeds(method, common, splits, rt)
        per_seed, summary, epochs = res.metrics["seeds"], res.metrics["summary"], cfg.epochs
    return {
        "bias": bias,
        "method": method,
        "epochs": epochs,
        "n_seeds": len(seeds),
        "summary": summary,
        "seeds": {s: {k: r[k]["acc"] for k in ("val", "test_hard", "test_easy")} for s, r in per_seed.items()},
    }
