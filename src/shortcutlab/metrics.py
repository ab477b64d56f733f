"""The metrics contract: what every stage's metrics file must hold, and the only reader of them.

``load_all(params)`` reads every file the params say exist (``evaluate``'s inputs), checks each against
:data:`CONTRACT` (required keys, numeric, finite, in range) and refuses, with the file and key named, a file
that breaks it, a model whose quality gate did not pass, or a classifier at chance. ``summary`` builds the
headline numbers (the DVC metrics); the report and the claims read through :func:`get`.
"""

from __future__ import annotations

import math
from pathlib import Path

from .io import read_json
from .snapshot import literature_files, provenance
from .sweep_point import point as sweep_point

# ------------------------------------------------------------------------------------------ the contract
# stage -> (dotted key, meaning, unit, (low, high)); every key must exist in every file of that stage
CONTRACT: dict[str, list[tuple[str, str, str, tuple[float, float]]]] = {
    "make_dataset": [
        ("train.n", "training images", "count", (1, math.inf)),
        ("train.dominant_rate", "share wearing the dominant color", "fraction", (0, 1)),
        ("test_hard.dominant_rate", "hard test: share wearing the dominant color", "fraction", (0, 0)),
    ],
    "train_lazy": [
        ("val.acc", "validation accuracy", "fraction", (0, 1)),
        ("test_hard.acc", "hard-test accuracy", "fraction", (0, 1)),
        ("test_easy.acc", "easy-test accuracy", "fraction", (0, 1)),
        ("test_hard.color_following", "hard test: prediction = color's digit", "fraction", (0, 1)),
        ("gate.passed", "quality gate passed", "flag", (1, 1)),
    ],
    "train_debiased": [
        ("summary.hard_acc.mean", "hard-test accuracy, mean over seeds", "fraction", (0, 1)),
        ("summary.val_acc.mean", "validation accuracy, mean over seeds", "fraction", (0, 1)),
        ("method.n_seeds", "seeds trained", "count", (1, math.inf)),
    ],
    "bias_sweep": [
        ("summary.hard_acc.mean", "hard-test accuracy, mean over seeds", "fraction", (0, 1)),
        ("summary.hard_acc.std", "hard-test accuracy, std over seeds", "fraction", (0, 1)),
        ("summary.val_acc.mean", "validation accuracy, mean over seeds", "fraction", (0, 1)),
        ("bias", "train-split share in the dominant color", "fraction", (0, 1)),
        ("n_seeds", "seeds trained", "count", (1, math.inf)),
    ],
    "literature": [
        (
            "summary.unbiased_acc.mean",
            "LfF score: mean accuracy over digit x color cells, mean over seeds",
            "fraction",
            (0, 1),
        ),
        ("summary.unbiased_acc.std", "LfF score, std over seeds", "fraction", (0, 1)),
        ("summary.conflicting_acc.mean", "bias-conflicting test accuracy, mean over seeds", "fraction", (0, 1)),
        ("n_seeds", "seeds trained", "count", (1, math.inf)),
    ],
    "train_attention": [
        ("val.acc", "validation accuracy", "fraction", (0, 1)),
        ("test_hard.acc", "hard-test accuracy", "fraction", (0, 1)),
        ("gate.passed", "quality gate passed", "flag", (1, 1)),
    ],
    "train_backdoor": [("val.acc", "clean model: validation accuracy", "fraction", (0, 1))],
    "backdoor_run": [
        ("val_acc", "validation accuracy", "fraction", (0, 1)),
        ("clean_acc_drop", "validation accuracy drop vs the clean model", "fraction", (-1, 1)),
        ("val.triggered.asr", "ASR: target mass share >= 0.5", "fraction", (0, 1)),
        ("val.false_trigger.asr", "false-trigger rate", "fraction", (0, 1)),
    ],
    "attack": [
        ("untargeted.clean_acc", "clean accuracy on the untargeted subset", "fraction", (0, 1)),
        ("untargeted.n_images", "untargeted images", "count", (1, math.inf)),
    ],
    "explain": [("test_hard.color_share.mean", "IG color share, hard test", "fraction", (-math.inf, math.inf))],
    "sae": [
        ("held_out.explained_variance", "explained variance (held out)", "fraction", (-math.inf, 1)),
        ("held_out.dead_fraction", "dead latents", "fraction", (0, 1)),
        ("held_out.l0", "active latents per sample", "count", (0, math.inf)),
    ],
}
CHANCE = 0.1  # ten classes


class QualityError(RuntimeError):
    pass


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion p measured on n trials."""
    if n <= 0:
        return (0.0, 1.0)
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def diff_interval(a: float, b: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval of the difference a - b of two accuracies measured on the same n images (normal
    approximation, unpaired: conservative for paired images)."""
    h = z * math.sqrt(a * (1 - a) / n + b * (1 - b) / n)
    return (a - b - h, a - b + h)


def paired_drop_interval(clean_only: int, backdoored_only: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval of the accuracy drop between two models scored on the same n images, from the discordant
    pairs (normal approximation of the paired difference, as McNemar's test uses them)."""
    d = (clean_only - backdoored_only) / n
    var = (clean_only + backdoored_only) / n - d * d
    h = z * math.sqrt(max(var, 0.0) / n)
    return (d - h, d + h)


def drop_interval(v: dict, split: str) -> tuple[float, float]:
    """A backdoor run's accuracy-drop interval on ``split``: paired where the run recorded its discordant pairs,
    else the (conservative) unpaired one."""
    n = v.get("n_val" if split == "val" else "n_test_hard", v["val"]["n_images"])
    disc = v.get(f"{split}_discordant")
    if disc:
        return paired_drop_interval(disc["clean_only"], disc["backdoored_only"], n)
    key = "val_acc" if split == "val" else "test_hard_acc"
    return diff_interval(v[f"clean_model_{split}_acc"], v[key], n)


def triggered_drop_interval(v: dict, split: str) -> tuple[float, float] | None:
    """The backdoored model's accuracy lost to the trigger on the whole ``split`` (clean minus triggered copies of
    the same images, paired); None where the run did not record it."""
    t = (v.get("triggered_whole") or {}).get(split)
    if not t:
        return None
    return paired_drop_interval(t["discordant"]["clean_only"], t["discordant"]["triggered_only"], t["n"])


def check_contract(path: str | Path, kind: str, m: dict) -> None:
    for key, meaning, _unit, (lo, hi) in CONTRACT.get(kind, []):
        v = get(m, key)
        if v is None:
            raise QualityError(f"{path}: {key} ({meaning}) is missing")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise QualityError(f"{path}: {key} ({meaning}) is not a number: {v!r}")
        if not lo <= v <= hi:
            raise QualityError(f"{path}: {key} ({meaning}) = {v} is out of range [{lo}, {hi}]")


def check_not_chance(path: str | Path, what: str, acc: float, n: int) -> None:
    """Refuse a classifier whose validation accuracy cannot be told from chance (95% Wilson interval)."""
    lo, _ = wilson(acc, n)
    if lo <= CHANCE:
        raise QualityError(
            f"{path}: {what} validation accuracy {acc:.4f} (n = {n}, 95% interval from {lo:.4f}) "
            f"is at chance ({CHANCE}): the model did not learn; rerun its stage"
        )


def flatten(d, prefix="") -> dict[str, float]:
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out.update(flatten(v, f"{prefix}[{i}]"))
    elif isinstance(d, str):
        pass  # a label (an architecture's name): not a measurement
    elif isinstance(d, bool) or not isinstance(d, (int, float)):
        raise QualityError(f"{prefix}: non-numeric metric value {d!r}")
    else:
        out[prefix] = d
    return out


def load_metrics(files: dict[str, str | Path]) -> dict[str, dict]:
    """Read every stage's metrics file; missing, non-numeric or non-finite values fail the gate."""
    out = {}
    for stage, path in files.items():
        if not Path(path).exists():
            raise QualityError(f"{path}: metrics of stage {stage} are missing")
        m = read_json(path)
        for k, v in flatten(m).items():
            if not math.isfinite(v):
                raise QualityError(f"{path}: {k} is not finite ({v})")
        out[stage] = m
    return out


def get(m: dict, path: str, default=None):
    """``m["a"]["b"]...`` for the dotted path "a.b..."; a key that itself holds dots ("0.5") is
    matched whole. ``default`` where any part is missing."""
    cur, parts = m, path.split(".")
    i = 0
    while i < len(parts):
        if not isinstance(cur, dict):
            return default
        for j in range(len(parts), i, -1):  # the longest dotted run that is a key
            key = ".".join(parts[i:j])
            if key in cur:
                cur, i = cur[key], j
                break
        else:
            return default
    return cur


# ------------------------------------------------------------------------------------------ summary
def summary(metrics: dict[str, dict]) -> dict:
    """The headline numbers (DVC's metrics: what `dvc metrics diff` and `dvc exp show` compare); the detail
    stays in the per-stage files the report reads."""
    s: dict = {}
    lz = metrics.get("train_lazy")
    if lz:
        s["lazy"] = {
            "val_acc": lz["val"]["acc"],
            "hard_acc": lz["test_hard"]["acc"],
            "hard_color_following": lz["test_hard"]["color_following"],
        }
    for m, v in (metrics.get("train_debiased") or {}).items():
        s.setdefault("debiased", {})[m] = {
            "val_acc": v["summary"]["val_acc"]["mean"],
            "hard_acc": v["summary"]["hard_acc"]["mean"],
        }
    for k, v in (metrics.get("train_attention") or {}).items():
        s.setdefault("attention_models", {})[k] = {"val_acc": v["val"]["acc"], "hard_acc": v["test_hard"]["acc"]}
    for k, v in (metrics.get("train_backdoor") or {}).items():
        if k != "clean":
            s.setdefault("backdoor", {})[k] = {
                "asr": v["val"]["triggered"]["asr"],
                "val_drop": v["clean_acc_drop"],
                "hard_drop": v["clean_acc_drop_test_hard"],
            }
    for k, r in attack_rows(metrics).items():
        if r["min_eps_pgd"] is not None:  # the smallest epsilon with >= 90% targeted PGD success (absent: never)
            s.setdefault("attack", {})[k] = {"min_eps_90_pgd": r["min_eps_pgd"]}
    for k, v in (metrics.get("sae") or {}).items():
        s.setdefault("sae", {})[k] = {
            "explained_variance": v["held_out"]["explained_variance"],
            "dead_fraction": v["held_out"]["dead_fraction"],
        }
    return s


def attack_rows(metrics: dict) -> dict[str, dict]:
    """Per attacked model: targeted (hard test) and untargeted success by epsilon, min eps for 90%."""
    out = {}
    for name, a in (metrics.get("attack") or {}).items():
        t = a["targeted"].get("test_hard", {})
        eps = [v["eps"] for v in a["untargeted"]["pgd"]]
        out[name] = {
            "eps": eps,
            "t_pgd": [v["success"] for v in t.get("pgd", [])],
            "t_fgsm": [v["success"] for v in t.get("fgsm", [])],
            "u_pgd": [v["success_on_clean_correct"] for v in a["untargeted"]["pgd"]],
            "u_fgsm": [v["success_on_clean_correct"] for v in a["untargeted"]["fgsm"]],
            "robust_pgd": [v["robust_acc"] for v in a["untargeted"]["pgd"]],
            "min_eps_pgd": t.get("min_eps_90_pgd"),
            "min_eps_fgsm": t.get("min_eps_90_fgsm"),
            "clean_acc": a["untargeted"]["clean_acc"],
            "n_targeted": t.get("n_images", 0),
            "n_untargeted": a["untargeted"]["n_images"],
        }
    return out


def hard_acc(metrics: dict, name: str) -> float | None:
    """Hard-test accuracy of the checkpoint that ``analysed_models.<name>`` names: for a per-seed directory,
    its lowest seed (the one attack and explain load, models.checkpoint_path), never the seeds' mean."""
    path = (metrics.get("analysed_models") or {}).get(name, "")
    if path.startswith("data/models/backdoor/"):  # an analysed backdoor checkpoint: its training run's metrics
        return get(metrics, f"train_backdoor.{Path(path).stem}.test_hard_acc")
    if name == "lazy":
        return get(metrics, "train_lazy.test_hard.acc")
    if name in (metrics.get("train_attention") or {}):
        return get(metrics, f"train_attention.{name}.test_hard.acc")
    seeds = get(metrics, f"train_debiased.{name}.seeds") or {}
    return seeds[min(seeds, key=int)]["test_hard"]["acc"] if seeds else None


def best_method(metrics: dict) -> str | None:
    db = metrics.get("train_debiased") or {}
    methods = [m for m in db if m != "oracle"]
    return max(methods, key=lambda m: db[m]["summary"]["hard_acc"]["mean"]) if methods else None


# ------------------------------------------------------------------------------------------ claims


def _files(params: dict) -> dict[str, dict[str, Path]]:
    """Every metrics file evaluate reads, by stage kind, derived from params (never a copied list)."""
    m = Path("metrics")
    return {
        "make_dataset": {"make_dataset": m / "make_dataset.json"},
        "train_lazy": {"train_lazy": m / "train_lazy.json"},
        "train_debiased": {k: m / "train_debiased" / f"{k}.json" for k in params["train_debiased"].methods},
        "attack": {k: m / "attack" / f"{k}.json" for k in params["analysed_models"]},
        "explain": {k: m / "explain" / f"{k}.json" for k in params["analysed_models"]},
        "sae": {k: m / "sae" / f"{k}.json" for k in params["sae"].runs},
        "train_attention": {
            k: m / "train_attention" / f"{k}.json" for k in [*params["train_attention"].runs, "vit_frozen"]
        },
        "train_backdoor": {k: m / "train_backdoor" / f"{k}.json" for k in ["clean", *params["train_backdoor"].runs]},
        "bias_sweep": {
            f"{b}/{k}": m / "bias_sweep" / str(b) / f"{k}.json"
            for b in params["bias_sweep"].biases
            for k in ["lazy", *params["bias_sweep"].methods]
        },
        "literature": literature_files(params["literature"]),  # this run's, or the preset's committed snapshot
    }


def _check_classifier(path, what: str, acc: float, n: int, gate) -> None:
    """A published classifier must meet its gate (re-checked from the file) and, unless its gate explicitly
    accepts chance-level models (``min_val_acc <= 0.1``: tiny test runs), be distinguishable from chance."""
    if acc < gate.min_val_acc:
        raise QualityError(f"{path}: {what} validation accuracy {acc:.4f} is below its gate {gate.min_val_acc}")
    if gate.min_val_acc > CHANCE:
        check_not_chance(path, what, acc, n)


def _check_classifiers(metrics: dict, files: dict, params: dict) -> None:
    n_val = int(metrics["make_dataset"]["val"]["n"])
    g = params["train_lazy"].gate
    _check_classifier(files["train_lazy"]["train_lazy"], "lazy", metrics["train_lazy"]["val"]["acc"], n_val, g)
    for k, v in metrics["train_debiased"].items():
        for seed, r in v["seeds"].items():
            _check_classifier(
                files["train_debiased"][k], f"{k} seed {seed}", r["val"]["acc"], n_val, params["train_debiased"].gate
            )
    for k, v in metrics["train_attention"].items():
        _check_classifier(files["train_attention"][k], k, v["val"]["acc"], n_val, params["train_attention"].gate)
    for k, v in metrics["bias_sweep"].items():
        g = params["train_lazy" if v["method"] == "lazy" else "train_debiased"].gate
        for seed, r in v["seeds"].items():
            _check_classifier(files["bias_sweep"].get(k, v.get("source")), f"{k} seed {seed}", r["val"], n_val, g)
    for k, v in metrics["literature"].items():  # the protocol has no validation split: its gate reads train
        for seed, r in v["seeds"].items():
            _check_classifier(
                files["literature"][k], f"{k} seed {seed}", r["train_acc"], n_val, params["literature"].gate
            )
    tb = params["train_backdoor"]
    for k, v in metrics["train_backdoor"].items():
        if k == "clean":
            _check_classifier(files["train_backdoor"][k], "backdoor clean model", v["val"]["acc"], n_val, tb.gate)
        elif tb.runs[k].method == "explanation":  # the two study baselines are allowed to fail: results
            _check_classifier(files["train_backdoor"][k], f"backdoor run {k}", v["val_acc"], n_val, tb.gate)


def epoch_selection(path: Path) -> dict | None:
    """A debiasing run's per-epoch hard-test curve (plots/train_debiased/<method>.csv, drawn for plotting and
    never used to pick a model), summarised per seed: the final epoch, the test-selected best epoch (what a
    study that picks its epoch on the test set reports) and the change from the mean of the second-last fifth
    of the epochs to the mean of the last fifth (still rising = the schedule had not converged)."""
    if not path.exists():
        return None
    import csv

    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "test_hard_acc" not in rows[0]:
        return None
    curves: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        curves.setdefault(r["seed"], []).append((int(r["epoch"]), float(r["test_hard_acc"])))
    out = {}
    for seed, c in sorted(curves.items()):
        c = sorted(c)
        acc = [a for _, a in c]
        best = max(range(len(acc)), key=acc.__getitem__)  # the first epoch at the maximum
        k = len(acc) // 5
        rise = sum(acc[-k:]) / k - sum(acc[-2 * k : -k]) / k if k else None
        out[seed] = {"epochs": len(acc), "final": acc[-1], "best": acc[best], "best_epoch": c[best][0], "rise": rise}
    return out


def load_all(params: dict) -> dict[str, dict]:
    """Every stage's metrics, each file checked against the contract; classifiers at chance are refused."""
    files = _files(params)
    metrics = {}
    for kind, paths in files.items():
        loaded = load_metrics(paths)
        for name, path in paths.items():
            contract = "backdoor_run" if kind == "train_backdoor" and name != "clean" else kind
            check_contract(path, contract, loaded[name])
        metrics[kind] = (
            loaded["make_dataset" if kind == "make_dataset" else "train_lazy"]
            if kind in ("make_dataset", "train_lazy")
            else loaded
        )
    main_point = sweep_point(params, metrics["train_lazy"], metrics["train_debiased"])  # the sweep at dataset.bias
    for v in main_point.values():
        check_contract(v["source"], "bias_sweep", v)
    metrics["bias_sweep"] = main_point | metrics["bias_sweep"]
    metrics["analysed_models"] = dict(params["analysed_models"])
    metrics["literature_provenance"] = provenance(params["literature"])
    metrics["train_debiased_epochs"] = {
        k: sel
        for k in params["train_debiased"].methods
        if (sel := epoch_selection(Path("plots/train_debiased") / f"{k}.csv")) is not None
    }
    _check_classifiers(metrics, files, params)
    return metrics
