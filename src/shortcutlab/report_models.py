"""The report's sections on the data and the trained models: dataset, lazy model, debiasing methods, attention
models."""

from __future__ import annotations

import statistics

from .markdown import ci, md_table, pct, pm


def section_dataset(metrics: dict, claims: list[dict]) -> list[str]:
    parts: list[str] = []
    ds = metrics.get("make_dataset")
    if ds:
        parts += [
            "## Dataset",
            "",
            md_table(
                ["split", "images", "dominant-color rate %", "bias-conflicting rate %"],
                [
                    [k, v["n"], ci(v["dominant_rate"], v["n"], 2), ci(v["conflict_rate"], v["n"], 2)]
                    for k, v in ds.items()
                ],
            ),
            "",
            "Brackets: 95% Wilson intervals of the rate that generated each split (the hard and easy tests are "
            "never / always dominant by construction).",
            "",
            "![samples](plots/make_dataset/samples.png)",
            "",
        ]
    return parts


def section_lazy(metrics: dict, claims: list[dict]) -> list[str]:
    parts: list[str] = []
    lz = metrics.get("train_lazy")
    if lz:
        p = lz["red_one_probe"]
        n_of = split_sizes(metrics)

        def acc(split, key="acc", classes=1):
            return ci(lz[split][key], n_of.get(split, 0) // classes, 2)

        parts += [
            "## Models",
            "",
            md_table(
                ["model", "train", "val", "easy test", "hard test", "hard color-following", "worst class (hard)"],
                [
                    [
                        "lazy",
                        acc("train"),
                        acc("val"),
                        acc("test_easy"),
                        acc("test_hard"),
                        acc("test_hard", "color_following"),
                        acc("test_hard", "worst_class_acc", 10),
                    ]
                ],
            ),
            "",
            "The first seed's published model; % with 95% Wilson intervals on the split's images (worst class: "
            "on a tenth of the split, about one class).",
            "",
            f"Red-1 probe (the study's: a test digit 1 painted red, black background): predicted "
            f"**{p['first_pred']}** (p(0) = {p['first_probs']['0']:.3f}, p(1) = {p['first_probs']['1']:.3f}); "
            f"over all {p['n']} test 1s painted red: {ci(p['pred_zero_rate'], p['n'])}% predicted 0, "
            f"{ci(p['pred_one_rate'], p['n'])}% predicted 1. On the {p['hard_test_red_ones_n']} hard-test 1s that "
            f"are red (with the dataset's noisy background): "
            f"{ci(p['hard_test_red_ones_pred_zero_rate'], p['hard_test_red_ones_n'])}% predicted 0 (95% Wilson "
            "intervals).",
            "",
        ]
        parts += _lazy_seeds(lz)
    return parts


def split_sizes(metrics: dict) -> dict[str, int]:
    """Images per split, from make-dataset's metrics ({} when absent)."""
    return {k: v["n"] for k, v in (metrics.get("make_dataset") or {}).items()}


def _lazy_seeds(lz: dict) -> list[str]:
    """The lazy model over every seed: final epoch, and (labelled) the test-selected best epoch."""
    sm, seeds = lz.get("summary"), lz.get("seeds") or {}
    if not sm:
        return []
    per = ", ".join(
        f"seed {s}: {pct(r['test_hard'])} (best epoch {r['best_epoch']['epoch']}: {pct(r['best_epoch']['acc'])})"
        for s, r in seeds.items()
    )
    return [
        f"Over {lz['n_seeds']} seed(s) (the table above is the first seed's published model), final epoch: "
        f"hard test {pm(sm['hard_acc'])}, easy test {pm(sm['easy_acc'])}, validation {pm(sm['val_acc'])} "
        "(mean ± std over seeds).",
        "",
        f"**Test-selected, never used for a claim of ours:** the best epoch's hard-test accuracy (the epoch "
        f"picked on the hard test itself) is {pm(sm['best_epoch_hard_acc'])}: the number a study gets by "
        f"choosing its epoch on the test set. Per seed: {per}.",
        "",
    ]


def ties(db: dict, order: list[str]) -> list[str]:
    out = []
    for a, b in zip(order, order[1:], strict=False):
        sa, sb = db[a]["summary"]["hard_acc"], db[b]["summary"]["hard_acc"]
        if min(db[a]["method"]["n_seeds"], db[b]["method"]["n_seeds"]) < 2:
            continue  # one seed: no spread to compare against
        if abs(sa["mean"] - sb["mean"]) <= sa["std"] + sb["std"]:  # mean ± std intervals overlap
            out.append(f"{a} ~ {b}")
    return out


def _debiasing_rows(db: dict, order: list[str]) -> list[list]:
    rows = []
    for k in order:
        v, sm = db[k], db[k]["summary"]
        label = f"{k} (reference: color-decorrelated training data)" if k == "oracle" else k

        def ms(key, sm=sm, n=v["method"]["n_seeds"]):
            r = sm[key]
            if n > 1:
                return f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}"
            return f"{100 * r['mean']:.2f}" + (" (1 seed)" if key == "hard_acc" else "")

        keys = ("hard_acc", "easy_acc", "val_acc", "worst_class_hard_acc", "hard_color_following")
        rows.append([label, v["method"]["arch"], v["method"]["epochs"], v["method"]["n_seeds"], *map(ms, keys)])
    return rows


def section_debiasing(metrics: dict, claims: list[dict]) -> list[str]:
    parts: list[str] = []
    db = metrics.get("train_debiased")
    if db:
        order = sorted(db, key=lambda k: -db[k]["summary"]["hard_acc"]["mean"])
        rows = _debiasing_rows(db, order)
        parts += [
            "## Debiasing methods",
            "",
            "Trained on the 95%-biased train split only; final-epoch models (no selection on any split); "
            "mean ± std over seeds (every column). Two rows tie when their hard-test mean ± std intervals "
            "overlap; single-seed rows have no spread and are not compared.",
            "",
            md_table(
                [
                    "method",
                    "arch",
                    "epochs",
                    "seeds",
                    "hard test %",
                    "easy %",
                    "val %",
                    "worst class %",
                    "color-following %",
                ],
                rows,
            ),
            "",
            "Training times: `metrics/timings/` (and the README's budget table).",
            "",
            "![debiasing](plots/evaluate/debiasing.png)",
            "",
        ]
        tied = ties(db, order)
        if tied:
            parts += ["Ties (hard-test mean ± std intervals overlap): " + "; ".join(tied), ""]
        parts += _test_selected(metrics.get("train_debiased_epochs") or {}, order)
    return parts


def selected(sel: dict) -> tuple[dict, dict, dict]:
    """Mean ± std over seeds of the final epoch, the test-selected best epoch and the last fifth's rise."""

    def ms(key: str) -> dict:
        vals = [r[key] for r in sel.values() if r[key] is not None] or [0.0]
        return {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0}

    return ms("final"), ms("best"), ms("rise")


def _test_selected(epochs: dict, order: list[str]) -> list[str]:
    rows = []
    for k in order:
        sel = epochs.get(k)
        if not sel or next(iter(sel.values()))["epochs"] < 5:
            continue
        final, best, rise = selected(sel)
        at = ", ".join(f"{r['best_epoch']}" for r in sel.values())
        n = next(iter(sel.values()))["epochs"]
        rows.append([k, n, pm(final), pm(best), f"{at} of {n}", f"{100 * rise['mean']:+.2f} ± {100 * rise['std']:.2f}"])
    if not rows:
        return []
    return [
        "**Test-selected, never used for a claim of ours:** for each method trained five epochs or more, the "
        "hard-test accuracy at the epoch picked on the hard test itself (what a study that chooses its epoch on "
        "the test set reports), and whether the schedule had converged: the change in hard-test accuracy from "
        "the second-last fifth of the epochs to the last fifth (points, mean ± std over seeds).",
        "",
        md_table(
            ["method", "epochs", "final epoch %", "test-selected best %", "best epoch per seed", "last-fifth change"],
            rows,
        ),
        "",
    ]


def _attention_checks(ta: dict, ex: dict) -> list[list[str]]:
    """The issue's expected shape of the attention maps, checked row by row."""
    checks = []

    def h(model, meth):
        return ex.get(model, {}).get("test_hard", {}).get(meth)

    for biased, deb, meth in (
        ("attention", "attention_debiased", "attention"),
        ("vit", "vit_debiased", "rollout"),
        ("vit", "vit_debiased", "grad_rollout"),
    ):
        a, b = h(biased, meth), h(deb, meth)
        if a and b:
            ok = b["concentration_ratio"] < a["concentration_ratio"] and b["foreground_mass"] > a["foreground_mass"]
            checks.append(
                [
                    f"{meth}: diffuse on `{biased}`, concentrated on the digit for `{deb}`",
                    f"concentration {a['concentration_ratio']:.2f} → {b['concentration_ratio']:.2f}, "
                    f"fg mass {a['foreground_mass']:.2f} → {b['foreground_mass']:.2f}",
                    "yes" if ok else "no",
                ]
            )
    vits = [k for k in ta if h(k, "gradcam")]
    if vits:
        inp = ("saliency", "input_x_gradient", "smoothgrad", "integrated_gradients")

        def deg(k, m):
            return (
                max(ex[k][sp][m]["degenerate_rate"] for sp in ("test_hard", "test_easy"))
                if m in ex[k]["test_hard"]
                else None
            )

        vit_like = [k for k in vits if deg(k, "rollout") is not None]
        for k in vit_like:
            g, f = deg(k, "gradcam"), deg(k, "gradcam_final_tokens")
            i = max(deg(k, m) for m in inp if deg(k, m) is not None)
            checks.append(
                [
                    f"`{k}`: Grad-CAM on the tokens degenerates far more often than input-gradient methods",
                    f"degenerate (the worse of hard and easy test): token Grad-CAM (last block's input) "
                    f"{100 * g:.1f}%, on the last block's "
                    f"output tokens {100 * f:.1f}%; input-gradient methods ≤ {100 * i:.1f}%",
                    "yes" if g > i + 0.05 else "no (only on the output tokens)" if f > i + 0.05 else "no",
                ]
            )
    return checks


def _attention_tables(ta: dict, ex: dict, metrics: dict | None = None) -> tuple:
    rows = []
    n_of = split_sizes(metrics) if metrics else {}

    def acc(v, split, key="acc"):
        return ci(v[split][key], n_of.get(split), 2)

    for k, v in ta.items():
        mm = v["model"]
        rows.append(
            [
                k,
                "vit" if mm["vit"] else "attention",
                mm.get("epochs", "—"),
                f"{mm['parameters']:,}",
                acc(v, "val"),
                acc(v, "test_easy"),
                acc(v, "test_hard"),
                pm((v.get("summary") or {}).get("hard_acc"), v.get("n_seeds")),
                acc(v, "test_hard", "color_following"),
            ]
        )
    look = []
    for k in ta:
        e = ex.get(k, {}).get("test_hard", {})
        for meth in ("attention", "rollout", "grad_rollout", "gradcam", "gradcam_final_tokens", "integrated_gradients"):
            if meth in e:
                r = e[meth]
                look.append(
                    [
                        k,
                        meth,
                        f"{r['concentration_ratio']:.2f}",
                        f"{r['foreground_mass']:.2f}",
                        ci(r["degenerate_rate"], e["n_images"]),
                        ci(r.get("class_identical_rate", 0), e.get("sanity_n", e["n_images"])),
                        f"{r['insertion_auc']:.3f}",
                        f"{r['sanity_spearman']:.2f}",
                    ]
                )
    return rows, look


def section_attention(metrics: dict, claims: list[dict]) -> list[str]:
    ta = metrics.get("train_attention") or {}
    if not ta:
        return []
    ex = metrics.get("explain") or {}
    rows, look = _attention_tables(ta, ex, metrics)
    checks = _attention_checks(ta, ex)
    return [
        "## Attention models: where they look",
        "",
        "`attention`: the study's two-conv network with a spatial attention layer after the second conv (1×1 "
        "conv → softmax over the 7×7 positions → attention-weighted pooling). `vit`: a tiny vision transformer "
        "(4×4 patches → 49 tokens + a class token). `*_debiased`: the same architecture trained with the "
        "color-consistency objective (the best debiasing method on the shared ConvNet). `vit_frozen`: the "
        "study's frozen-backbone case — a linear head trained on the biased data on top of the frozen "
        "`vit_debiased` backbone. Final-epoch models; no selection on any test split. The per-model columns "
        'describe the first seed\'s published model (the one the analyses below read); "all seeds" is the '
        "mean ± std over every seed of the run (the frozen probe's seeds all share the first backbone seed).",
        "",
        md_table(
            [
                "model",
                "arch",
                "epochs",
                "parameters",
                "val",
                "easy test",
                "hard test",
                "hard test, all seeds",
                "hard color-following",
            ],
            rows,
        ),
        "",
        "Where they look (hard test, maps of the predicted class): concentration ratio (fraction of pixels "
        "holding 80% of the positive map; uniform ≈ 0.8), foreground mass, degenerate %, identical-for-two-"
        "classes %, insertion AUC, sanity ρ (see the explanation section for definitions):",
        "",
        md_table(
            [
                "model",
                "method",
                "concentration",
                "fg mass",
                "degenerate %",
                "class-identical %",
                "insertion",
                "sanity ρ",
            ],
            look,
        ),
        "",
        "The issue's expected shape, checked against these numbers (reported as measured either way):",
        "",
        md_table(["expected", "measured", "as expected?"], checks),
        "",
    ]
