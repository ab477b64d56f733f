"""The bias sweep's point at ``dataset.bias``, read from the runs that already trained it.

The sweep trains every ``bias_sweep.methods`` recipe (and the lazy model) on the dataset of each bias in
``bias_sweep.biases``, with every other ``dataset`` key as configured. At ``dataset.bias`` that dataset is
``make-dataset``'s, byte for byte, and the recipes are ``train-debiased``'s and ``train-lazy``'s: the same seeds
give the same models. So unless ``dataset.bias`` is itself listed in ``bias_sweep.biases``, the sweep does not
train it again: its point is built here from ``metrics/train_debiased/<method>.json`` and
``metrics/train_lazy.json``, restricted to ``bias_sweep.seeds``, in the format of a ``bias-sweep`` stage's file
(the same summary arithmetic, so the same bytes as the stage wrote when it ran).
"""

from __future__ import annotations

from .schema import ParamsError


def reused(params: dict) -> bool:
    """Whether the sweep's point at ``dataset.bias`` comes from train-debiased / train-lazy."""
    bs = params["bias_sweep"]
    return bool(bs.biases) and params["dataset"].bias not in bs.biases


def check(params: dict) -> None:
    """The reused point needs every ``bias_sweep.seeds`` seed among the seeds train-debiased and train-lazy run."""
    if not reused(params):
        return
    seeds, bias = list(params["bias_sweep"].seeds), params["dataset"].bias
    sources = {"lazy": ("train_lazy.seeds", list(params["train_lazy"].seeds))}
    td = params["train_debiased"]
    for m in params["bias_sweep"].methods:
        key = f"train_debiased.methods.{m}.seeds" if td.method(m).seeds else "train_debiased.seeds"
        sources[m] = (key, list(td.seeds_for(m)))
    for key, have in sources.values():
        missing = [s for s in seeds if s not in have]
        if missing:
            raise ParamsError(
                f"bias_sweep.seeds: seeds {missing} are not in {key} {have}; the sweep's point at dataset.bias "
                f"({bias}) is taken from those runs. Add the seeds there, or add {bias} to bias_sweep.biases "
                "to train that point in the sweep"
            )


def _lazy_record(r: dict) -> dict:
    """A train-lazy per-seed record (metrics/train_lazy.json ``seeds``) in the shape seed_summary reads."""
    return {
        "val": {"acc": r["val"]},
        "test_easy": {"acc": r["test_easy"]},
        "test_hard": {
            "acc": r["test_hard"],
            "worst_class_acc": r["test_hard_worst_class_acc"],
            "color_following": r["test_hard_color_following"],
        },
        "best_epoch": r["best_epoch"],
    }


def point(params: dict, train_lazy: dict, train_debiased: dict[str, dict]) -> dict[str, dict]:
    """``{"<bias>/<method>": record}`` for the lazy model and every sweep method at ``dataset.bias``, each record
    as ``bias-sweep@<bias>-<method>`` would write it; ``{}`` when the sweep trains that bias itself."""
    if not reused(params):
        return {}
    check(params)
    from .evaluation import mean_std, seed_summary  # the sweep stage's own arithmetic (imports torch: ~1 s)

    bias, seeds = params["dataset"].bias, [str(s) for s in params["bias_sweep"].seeds]
    lazy = {s: _lazy_record(train_lazy["seeds"][s]) for s in seeds}
    runs = {
        "lazy": (
            params["train_lazy"].epochs,
            lazy,
            seed_summary(lazy) | {"best_epoch_hard_acc": mean_std(r["best_epoch"]["acc"] for r in lazy.values())},
        )
    }
    for m in params["bias_sweep"].methods:
        per_seed = {s: train_debiased[m]["seeds"][s] for s in seeds}
        runs[m] = (train_debiased[m]["method"]["epochs"], per_seed, seed_summary(per_seed))
    return {
        f"{bias}/{m}": {
            "bias": bias,
            "method": m,
            "epochs": epochs,
            "n_seeds": len(seeds),
            "summary": summary,
            "seeds": {s: {k: r[k]["acc"] for k in ("val", "test_hard", "test_easy")} for s, r in per_seed.items()},
            "source": "metrics/train_lazy.json" if m == "lazy" else f"metrics/train_debiased/{m}.json",
        }
        for m, (epochs, per_seed, summary) in runs.items()
    }
