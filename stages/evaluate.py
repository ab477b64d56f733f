"""evaluate: metrics/summary.json (the headline numbers), REPORT.md and the claims table, from every stage's
metrics (read and checked through the metrics contract)."""

import sys

from shortcutlab import figures
from shortcutlab.claims import claims_table, verdict_counts
from shortcutlab.cli import run_stage
from shortcutlab.io import write_json, write_text
from shortcutlab.metrics import QualityError, attack_rows, load_all, summary
from shortcutlab.report import plot_tables, render


def main(params):
    try:
        metrics = load_all(params)
    except QualityError as e:
        print(f"evaluate: quality gate failed: {e}", file=sys.stderr)
        sys.exit(3)
    claims = claims_table(metrics)
    write_json("metrics/summary.json", summary(metrics) | {"claims": verdict_counts(claims)})
    write_json("metrics/claims.json", {"rows": claims})
    figures.debiasing_figure("plots/evaluate/debiasing.png", metrics)
    figures.attack_figure("plots/evaluate/attack.png", attack_rows(metrics))
    figures.explain_figure("plots/evaluate/explain.png", metrics)
    figures.backdoor_figure("plots/evaluate/backdoor.png", metrics)
    plot_tables("plots/evaluate", metrics)
    write_text("REPORT.md", render(metrics, claims))


if __name__ == "__main__":
    run_stage("evaluate", main)
