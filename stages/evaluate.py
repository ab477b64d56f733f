"""evaluate: metrics/summary.json, REPORT.md and the claims table, from every stage's metrics."""

import sys
from pathlib import Path

from shortcutlab.cli import run_stage
from shortcutlab.io import write_csv, write_json, write_text
from shortcutlab.params import METHODS
from shortcutlab.report import (
    QualityError,
    attack_figure,
    backdoor_figure,
    claims_table,
    debiasing_figure,
    explain_figure,
    load_metrics,
    render,
    summary,
)

SAES = ("lazy-l1", "lazy-topk", "debiased-l1", "debiased-topk")
STAGE_METRICS = {
    "make_dataset": "metrics/make_dataset.json",
    "train_lazy": "metrics/train_lazy.json",
}


def main(params):
    try:
        metrics = load_metrics(STAGE_METRICS)
        metrics["train_debiased"] = load_metrics({m: Path(f"metrics/train_debiased/{m}.json") for m in METHODS})
        analysed = params["analysed_models"]
        metrics["analysed_models"] = dict(analysed)
        metrics["attack"] = load_metrics({m: Path(f"metrics/attack/{m}.json") for m in analysed})
        metrics["explain"] = load_metrics({m: Path(f"metrics/explain/{m}.json") for m in analysed})
        metrics["sae"] = load_metrics({n: Path(f"metrics/sae/{n}.json") for n in SAES})
        metrics["train_attention"] = load_metrics({m: Path(f"metrics/train_attention/{m}.json")
                                                   for m in [*params["train_attention"].runs, "vit_frozen"]})
        runs = ["clean", *params["train_backdoor"].runs]
        metrics["train_backdoor"] = load_metrics({r: Path(f"metrics/train_backdoor/{r}.json") for r in runs})
    except QualityError as e:
        print(f"evaluate: quality gate failed: {e}", file=sys.stderr)
        sys.exit(3)
    claims = claims_table(metrics)
    s = summary(metrics)
    s["claims"] = {"holds": sum(r["verdict"] == "holds" for r in claims),
                   "does_not_hold": sum(r["verdict"] == "does not hold" for r in claims),
                   "inconclusive": sum(r["verdict"] == "inconclusive" for r in claims),
                   "not_measured": sum(r["verdict"] == "not measured" for r in claims)}
    write_json("metrics/summary.json", s)
    write_json("metrics/claims.json", {"rows": claims})
    debiasing_figure("plots/evaluate/debiasing.png", metrics)
    attack_figure("plots/evaluate/attack.png", metrics)
    explain_figure("plots/evaluate/explain.png", metrics)
    backdoor_figure("plots/evaluate/backdoor.png", metrics)
    write_text("REPORT.md", render(metrics, claims))
    dens = [{"bin": f"{name} [1e{-6 + i * 0.5:g}, 1e{-5.5 + i * 0.5:g})", "count": c}
            for name, v in metrics["sae"].items() for i, c in enumerate(v["held_out"]["density_histogram"])]
    write_csv("plots/evaluate/sae_density.csv", dens)
    sweep = [{"run": k, "poison_rate": v["run"]["poison_rate"], "asr_mass_0.5": v["val"]["triggered"]["asr_mass_0.5"],
              "clean_acc_drop": v["clean_acc_drop"]}
             for k, v in metrics["train_backdoor"].items() if k != "clean" and v["run"]["explanation_method"] == 1]
    if sweep:  # no explanation-backdoor runs configured: no sweep to plot (never a fake row)
        write_csv("plots/evaluate/backdoor_sweep.csv", sweep)


if __name__ == "__main__":
    run_stage("evaluate", main)
