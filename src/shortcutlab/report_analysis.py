"""The report's sections on the analyses: attacks, explanations (trust, usability, neurons), the
explanation-aware backdoor, sparse autoencoders."""

from __future__ import annotations

from .markdown import ci, half_width, md_table, methods_of
from .metrics import attack_rows, hard_acc

# An SAE converged when, over a tenth of its epochs ending where the learning-rate decay starts (sae.convergence),
# the held-out numbers the analysis reads stopped moving: explained variance by at most 0.001, L0 share by at
# most 1 point, dead share within max(2 points, 2 latents). The objective itself creeps down like a power law, a
# fixed few % per tenth at any length: reported, not judged.
CONVERGED = {"ev_change": 0.001, "l0_fraction_change": 0.01, "dead_fraction_tail_range": 0.02}


def is_converged(c: dict, m: int) -> bool | None:
    """The rule above on a ``sae.convergence`` record (None when it holds no held-out readouts)."""
    if "ev_change" not in c:
        return None
    tol = CONVERGED | {"dead_fraction_tail_range": max(CONVERGED["dead_fraction_tail_range"], 2 / m)}
    return all(abs(c[k]) <= t for k, t in tol.items())


def section_attacks(metrics: dict, claims: list[dict]) -> list[str]:
    parts: list[str] = []
    ar = attack_rows(metrics)
    if ar:
        eps = next(iter(ar.values()))["eps"]
        n_hard = (metrics.get("make_dataset") or {}).get("test_hard", {}).get("n")
        rows = []
        for k, r in ar.items():
            ha = hard_acc(metrics, k)
            rows.append(
                [
                    k,
                    ci(ha, n_hard) if ha is not None else "—",
                    r["n_targeted"],
                    " / ".join(f"{100 * v:.0f}" for v in r["t_fgsm"]),
                    " / ".join(f"{100 * v:.0f}" for v in r["t_pgd"]),
                    f"± {half_width(r['t_fgsm'] + r['t_pgd'], r['n_targeted']):.1f}" if r["n_targeted"] else "—",
                    r["min_eps_pgd"] if r["min_eps_pgd"] is not None else f"> {eps[-1]}",
                    r["n_untargeted"],
                    " / ".join(f"{100 * v:.0f}" for v in r["robust_pgd"]),
                    f"± {half_width(r['robust_pgd'], r['n_untargeted']):.1f}",
                ]
            )
        parts += [
            "## Adversarial attacks",
            "",
            f"L∞ FGSM and PGD at eps = {' / '.join(f'{e:g}' for e in eps)}. Targeted: the first n "
            "hard-test images of the source digit (column n) pushed to the target digit (success = predicted "
            "target). "
            "Robust accuracy: untargeted PGD on a fixed hard-test subset (column n). "
            "Debiased models: the first seed's checkpoint, and the hard-test accuracy shown is that checkpoint's "
            "(with its 95% Wilson interval over the hard test), not the seeds' mean of the training table. "
            "95% intervals: the ± columns give the widest "
            "Wilson half-width (points) over the row's cells to their left (FGSM and PGD, every eps).",
            "",
            md_table(
                [
                    "model",
                    "hard acc % [95% CI]",
                    "targeted n",
                    "targeted FGSM %",
                    "targeted PGD %",
                    "targeted 95% ±",
                    "min eps (PGD ≥ 90%)",
                    "untargeted n",
                    "robust acc PGD %",
                    "robust 95% ±",
                ],
                rows,
            ),
            "",
            "![attack](plots/evaluate/attack.png)",
            "",
        ]
    return parts


def _explain_tables(ex: dict) -> tuple:
    rows = []
    for mname, e in ex.items():
        h = e["test_hard"]
        n = h["n_images"]
        for meth in methods_of(e):
            r = h[meth]
            rows.append(
                [
                    mname,
                    meth,
                    f"{r['concentration_ratio']:.2f}",
                    f"{r['foreground_mass']:.2f}",
                    ci(r["degenerate_rate"], n),
                    f"{r.get('class_contrast', 0.0):.3f}",
                    f"{r['deletion_auc']:.3f}",
                    f"{r['insertion_auc']:.3f}",
                    ci(r["falsification_rate"], n),
                    f"{r['sanity_spearman']:.2f}",
                ]
            )
    cs = [
        [m, f"{e['test_hard']['color_share']['mean']:.3f}", f"{e['test_easy']['color_share']['mean']:.3f}", *_ig(e)]
        for m, e in ex.items()
    ]
    return rows, cs


def _ig(e: dict) -> list[str]:
    """IG's completeness on the hard test: median and 95th-percentile gap, share of maps within 1% (Wilson)."""
    r = e["test_hard"].get("integrated_gradients", {})
    if "completeness_gap_median" not in r:
        return ["—", "—", "—"]
    n = e["test_hard"]["n_images"]
    gaps = [f"{100 * r[k]:.2f}%" for k in ("completeness_gap_median", "completeness_gap_p95")]
    return [*gaps, ci(r["completeness_within_1pct"], n)]


def _ig_steps(ex: dict) -> str:
    steps = {e["test_hard"].get("integrated_gradients", {}).get("ig_steps") for e in ex.values()} - {None}
    return "/".join(map(str, sorted(steps))) or "its"


def section_explain(metrics: dict, claims: list[dict]) -> list[str]:
    parts: list[str] = []
    ex = metrics.get("explain")
    if ex:
        any_model = next(iter(ex.values()))
        rows, cs = _explain_tables(ex)
        parts += [
            "## Explanations: how far to trust them",
            "",
            "Color share: Integrated Gradients from the image's own grayscale version as a share of IG from "
            "black (completeness makes it [f(x) − f(gray x)] / [f(x) − f(0)] for the predicted logit), "
            "clipped to [0, 1]: how much of the evidence is color. IG completeness gap: "
            "|Σ attributions − (f(x) − f(0))| / |f(x) − f(0)| per hard-test image, the error of IG's "
            f"{_ig_steps(ex)} Gauss–Legendre nodes (`explain.ig_steps`) on the path from black; the color share "
            'and the IG maps carry it. README, "Time budget": what more nodes buy.',
            "",
            md_table(
                ["model", "color share (hard)", "color share (easy)", "IG gap median", "IG gap p95", "IG within 1% %"],
                cs,
            ),
            "",
            f"Per model × method on {any_model['test_hard']['n_images']} fixed hard-test images, maps of the "
            "predicted class. Foreground mass: share of positive attribution on the digit's stroke. "
            "Degenerate: all-zero or near-uniform maps (reported, never replaced). "
            "Class contrast: mean |map(pred) − map(true)| on misclassified images. "
            "Deletion (lower is better) / insertion (higher is better) "
            "AUC of the target probability. Falsification: share of images where removing the top-10% "
            "pixels hurts less than removing random ones. Sanity: Spearman correlation with the same "
            "architecture re-initialised (high = the map does not depend on what was learned). Brackets: "
            "95% Wilson intervals.",
            "",
            md_table(
                [
                    "model",
                    "method",
                    "concentration",
                    "fg mass",
                    "degenerate %",
                    "class contrast",
                    "deletion",
                    "insertion",
                    "falsified %",
                    "sanity ρ",
                ],
                rows,
            ),
            "",
            "![explain](plots/evaluate/explain.png)",
            "",
        ]
    return parts


def section_usability(metrics: dict, claims: list[dict]) -> list[str]:
    parts: list[str] = []
    ex = metrics.get("explain")
    if ex:
        methods = []  # the union over models, in order: a method only some architectures support is "n/a" elsewhere
        for e in ex.values():
            methods += [k for k in methods_of(e) if k not in methods]

        def cell(e, meth, key):
            if meth not in e["test_hard"]:
                return "n/a"
            return f"{100 * max(e[sp][meth].get(key, 0.0) for sp in ('test_hard', 'test_easy')):.1f}"

        def widest(e, key, n):
            ps = [
                e[sp][meth].get(key, 0.0)
                for meth in methods
                if meth in e["test_hard"]
                for sp in ("test_hard", "test_easy")
            ]
            return f"± {half_width(ps, n):.1f}"

        drows = [
            [m]
            + [cell(e, meth, "degenerate_rate") for meth in methods]
            + [widest(e, "degenerate_rate", e["test_hard"]["n_images"])]
            for m, e in ex.items()
        ]
        irows = [
            [m]
            + [cell(e, meth, "class_identical_rate") for meth in methods]
            + [widest(e, "class_identical_rate", e["test_hard"].get("sanity_n", e["test_hard"]["n_images"]))]
            for m, e in ex.items()
        ]
        parts += [
            "### Which methods are usable on which model",
            "",
            "Degenerate-map rate % (all-zero or near-uniform maps; the larger of the hard and easy test), per "
            "model × method; n/a: the method does not apply to the architecture (attention maps and rollout "
            "need attention layers; `gradcam_final_tokens` is Grad-CAM on a transformer's last-block output "
            "tokens, the layer the study used on a frozen CLIP ViT). A degenerate map is reported, never "
            "replaced. Last column: the widest 95% Wilson half-width (points) over the row's cells.",
            "",
            md_table(["model", *methods, "95% ±"], drows),
            "",
            "Identical maps for two different classes % (predicted class vs runner-up class, the same after "
            "min-max normalisation, on the sanity-check images; class-independent methods — attention maps, "
            "rollout — are identical by construction):",
            "",
            md_table(["model", *methods, "95% ±"], irows),
            "",
        ]
    return parts


def section_neurons(metrics: dict, claims: list[dict]) -> list[str]:
    parts: list[str] = []
    ex = metrics.get("explain")
    if ex:
        nrows = []
        for mname, e in ex.items():
            n, pr = e["neurons"], e.get("probes_hard_test", {})
            if "hidden" not in n:
                continue
            sc, fl = pr.get("successes", {}), pr.get("failures", {})
            nrows.append(
                [
                    mname,
                    f"{n['alive']}/{n['units']}",
                    f"{n['csi_mean']:.2f}",
                    n["csi_gt_3"],
                    f"{n['first_layer']['csi_mean']:.2f}",
                    f"{n['hidden']['actmax_seed_consistency_mean']:.2f}",
                    f"{n['hidden']['intensity_cv_mean']:.2f}",
                    f"{n['hidden']['spatial_cv_mean']:.2f}",
                    f"{sc.get('n', 0)} / {fl.get('n', 0)}",
                    f"{sc.get('concentration_pred', float('nan')):.2f} / "
                    f"{fl.get('concentration_pred', float('nan')):.2f}",
                ]
            )
        if nrows:
            parts += [
                "### What the neurons encode",
                "",
                "Hidden layer (the lazy model's FC-1, the others' pooled features): live units, mean CSI over "
                "the ten pure palette colors and units with CSI > 3; first-layer filters' mean CSI; "
                "activation maximisation of every hidden unit from two random starts (cosine similarity of the "
                "two images, mean over units); coefficient of variation of each unit's response to its "
                "favourite color over four intensities and over nine positions of a 10-pixel patch (low = "
                "invariant); Grad-CAM concentration on up to 100 hard-test successes / failures. Figures: "
                "`plots/explain/<model>_neurons.png` (filters, response heatmaps, CSI histogram, "
                "activation maximisation) and `plots/explain/<model>_classes.png` (class visualisations, "
                "probes).",
                "",
                md_table(
                    [
                        "model",
                        "live units",
                        "CSI mean",
                        "CSI > 3",
                        "first-layer CSI",
                        "act-max seed cos",
                        "intensity CV",
                        "spatial CV",
                        "successes / failures",
                        "CAM concentration (s / f)",
                    ],
                    nrows,
                ),
                "",
                "![neurons](plots/explain/lazy_neurons.png)",
                "",
            ]
    return parts


def _converged(c: dict | None, m: int) -> str:
    """yes/no by :func:`is_converged`, with the objective's drop and the dead share's range over the tail."""
    ok = is_converged(c or {}, m)
    if ok is None:
        return "—"
    return (
        f"{'yes' if ok else 'no'} (objective {-100 * c['rel_loss_drop']:+.1f}%, EV ±{abs(c['ev_change']):.4f}, "
        f"dead range {100 * c['dead_fraction_tail_range']:.1f} pts)"
    )


def _sae_tables(sa: dict, n_hard: int | None) -> tuple:
    rows = []
    for k, v in sa.items():
        h, r, f = v["held_out"], v["recovery"], v["features"]
        rows.append(
            [
                k,
                f"{h['l0']:.1f} / {v['dictionary']}",
                f"{h['explained_variance']:.4f}",
                f"{h['nmse']:.4f}",
                ci(h["dead_fraction"], v["dictionary"]),
                ci(h["dense_fraction"], v["dictionary"]),
                f"{h['shrinkage']:.3f}",
                f"{100 * r['acc_recovered']:.2f}",
                f"{r['ce_recovered_vs_zero']:.3f}",
                f"{r['ce_recovered_vs_mean']:.3f}",
                f"{f['live']}",
                f"{f['color_like']}/{f['shape_like']}/{f['mixed']}",
                f"{f['digit_selectivity']:.2f}",
                f"{f['mean_entropy_bits']:.2f}",
                _converged(v.get("convergence"), v["dictionary"]),
            ]
        )
    irows = [
        [
            k,
            f"{v['interventions_summary']['digit_amplify_delta_p']:+.3f}",
            f"{v['interventions_summary']['digit_ablate_delta_p']:+.3f}",
            ci(v["interventions_summary"]["digit_ablate_flip_rate"], n_hard),
            ci(v["interventions_summary"]["color_steer_to_class_rate"], n_hard),
            f"{v['interventions_summary']['color_ablate_delta_p']:+.3f}",
        ]
        for k, v in sa.items()
    ]
    return rows, irows


def section_sae(metrics: dict, claims: list[dict]) -> list[str]:
    parts: list[str] = []
    sa = metrics.get("sae")
    if sa:
        rows, irows = _sae_tables(sa, (metrics.get("make_dataset") or {}).get("test_hard", {}).get("n"))
        parts += [
            "## Sparse autoencoders",
            "",
            "SAEs on the hidden layer (lazy: the 64-unit FC-1 after ReLU; debiased = consistency_convnet: the "
            "64-d pooled features; the attention models have no hidden FC layer and get no SAE), "
            "standardised per unit, trained on training-split activations; every "
            "metric on held-out validation activations; feature analysis on the hard test, where digit and "
            "color are not confounded. Explained variance = 1 − Σ‖x − x̂‖² / Σ‖x − x̄‖². Color-like / "
            "shape-like / mixed: mutual information of a feature's activity with color vs digit (ratio 2). "
            "Dead: never active on the validation split; dense: active on more than half of it; brackets: "
            "95% Wilson intervals over the dictionary's latents (one SAE seed: no seed spread). Converged: "
            "over a tenth of the epochs ending where the learning-rate decay starts (the decay would settle any run by "
            "construction) the held-out explained variance moved by at most 0.001, the L0 share "
            "by at most 1 point and the dead share stayed within max(2 points, 2 latents) (final model kept; the "
            "readouts are logged per epoch on the validation split and never used to choose anything). The "
            "training objective's own change over that window is shown beside it: it creeps down like a power law, "
            "a few % per tenth at any length, so it is reported, not judged. "
            "Dead latents against the dictionary size: `scripts/sae_sweep.py` (README, Results).",
            "",
            md_table(
                [
                    "SAE",
                    "L0",
                    "explained var",
                    "NMSE",
                    "dead %",
                    "dense %",
                    "shrinkage",
                    "acc recovered %",
                    "CE rec. vs zero",
                    "CE rec. vs mean",
                    "live",
                    "color/shape/mixed",
                    "digit selectivity",
                    "entropy bits",
                    "converged (before the lr decay)",
                ],
                rows,
            ),
            "",
            "Interventions (error term kept: x' = dec(f edited) + (x − x̂)), averaged over every hard-test "
            "sample of the class/color: top features of each digit amplified ×3 / ablated ×0 (Δp of that "
            "digit, flip rate), top features of each color amplified ×3 on images of other colors (share "
            "then predicted as that color's digit) and ablated on images of that color. Rates: 95% Wilson "
            "intervals on the hard test's images (an upper bound on the interval: each rate averages "
            "subsets of them).",
            "",
            md_table(
                ["SAE", "digit ×3 Δp", "digit ×0 Δp", "digit ×0 flips %", "color steer → digit %", "color ×0 Δp"], irows
            ),
            "",
        ]
    return parts
