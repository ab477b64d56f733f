"""evaluate: one summary of every stage's metrics, a markdown report, and the claims table.

Each claim of the study is checked against what the pipeline measured by a written rule:
- a *value* claim holds when the measured value is within its stated tolerance of the study's number,
  and does not hold otherwise;
- a *direction* claim (A beats B) holds when the difference has the claimed sign and exceeds the
  measured spread (2 x the larger std over seeds, or a stated minimum); it does not hold when the
  difference has the opposite sign and exceeds the spread; otherwise it is inconclusive;
- a claim whose measurement is not produced by the pipeline is reported as "not measured".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .io import read_json

HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURED = "holds", "does not hold", "inconclusive", "not measured"


class QualityError(RuntimeError):
    pass


def flatten(d, prefix="") -> dict[str, float]:
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out.update(flatten(v, f"{prefix}[{i}]"))
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
    cur = m
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur


# ------------------------------------------------------------------------------------------ summary
def summary(metrics: dict[str, dict]) -> dict:
    s: dict = {}
    ds = metrics.get("make_dataset")
    if ds:
        s["dataset"] = {k: {"n": v["n"], "dominant_rate": v["dominant_rate"]} for k, v in ds.items()}
    lz = metrics.get("train_lazy")
    if lz:
        s["lazy"] = {
            "hard_acc": lz["test_hard"]["acc"], "easy_acc": lz["test_easy"]["acc"], "val_acc": lz["val"]["acc"],
            "hard_color_following": lz["test_hard"]["color_following"],
            "red_one_first_pred": lz["red_one_probe"]["first_pred"],
            "red_one_pred_zero_rate": lz["red_one_probe"]["pred_zero_rate"],
        }
    return s


# ------------------------------------------------------------------------------------------ claims
@dataclass
class Claim:
    text: str
    study: str
    measure: Callable[[dict], tuple[str, str] | None]  # metrics -> (measured text, verdict) or None


def within(value: float, target: float, tol: float) -> str:
    return HOLDS if abs(value - target) <= tol else FAILS


def _lazy_hard(m):
    v = get(m, "train_lazy.test_hard.acc")
    if v is None:
        return None
    return f"{100 * v:.2f}% (final epoch)", within(100 * v, 17.8, 5.0)


def _red_one(m):
    p = get(m, "train_lazy.red_one_probe")
    if p is None:
        return None
    verdict = HOLDS if p["first_pred"] == 0 else FAILS
    return (f"first test 1 painted red -> {p['first_pred']}; {100 * p['pred_zero_rate']:.1f}% of all red-painted "
            f"test 1s -> 0; hard-test 1s that are red (with background) -> 0 in "
            f"{100 * p['hard_test_red_ones_pred_zero_rate']:.1f}%", verdict)


CLAIMS: list[Claim] = [
    Claim("Lazy model hard-test accuracy ≈ 17.8% (holds within ±5 points)", "17.8%", _lazy_hard),
    Claim("Red-1 probe: a digit 1 colored red is predicted as 0", "predicts 0", _red_one),
]


def claims_table(metrics: dict) -> list[dict]:
    rows = []
    for c in CLAIMS:
        r = c.measure(metrics)
        measured, verdict = r if r is not None else ("—", NOT_MEASURED)
        rows.append({"claim": c.text, "study": c.study, "measured": measured, "verdict": verdict})
    return rows


# ------------------------------------------------------------------------------------------ report
def pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render(metrics: dict, claims: list[dict]) -> str:
    parts = ["# shortcut-lab report", "",
             "Generated by the `evaluate` stage from `metrics/*.json`; every number below was measured by "
             "this pipeline run (`dvc repro`). Accuracies are final-epoch numbers: no checkpoint is selected "
             "on any test split.", ""]
    ds = metrics.get("make_dataset")
    if ds:
        parts += ["## Dataset", "",
                  md_table(["split", "images", "dominant-color rate", "bias-conflicting rate"],
                           [[k, v["n"], pct(v["dominant_rate"]), pct(v["conflict_rate"])] for k, v in ds.items()]),
                  "", "![samples](plots/make_dataset/samples.png)", ""]
    lz = metrics.get("train_lazy")
    if lz:
        p = lz["red_one_probe"]
        parts += ["## Models", "",
                  md_table(["model", "train", "val", "easy test", "hard test", "hard color-following",
                            "worst class (hard)"],
                           [["lazy", pct(lz["train"]["acc"]), pct(lz["val"]["acc"]), pct(lz["test_easy"]["acc"]),
                             pct(lz["test_hard"]["acc"]), pct(lz["test_hard"]["color_following"]),
                             pct(lz["test_hard"]["worst_class_acc"])]]),
                  "",
                  f"Red-1 probe (the study's: a test digit 1 painted red, black background): predicted "
                  f"**{p['first_pred']}** (p(0) = {p['first_probs']['0']:.3f}, p(1) = {p['first_probs']['1']:.3f}); "
                  f"over all {p['n']} test 1s painted red: {pct(p['pred_zero_rate'])} predicted 0, "
                  f"{pct(p['pred_one_rate'])} predicted 1. On the {p['hard_test_red_ones_n']} hard-test 1s that "
                  f"are red (with the dataset's noisy background): {pct(p['hard_test_red_ones_pred_zero_rate'])} "
                  f"predicted 0.", ""]
    parts += ["## Claims of the study, checked", "", __doc__.split("\n\n", 1)[1].strip(), "",
              md_table(["claim", "study", "measured", "verdict"],
                       [[r["claim"], r["study"], r["measured"], f"**{r['verdict']}**"] for r in claims]), ""]
    return "\n".join(parts)
