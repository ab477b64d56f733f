"""Every claim of the study, checked against what the pipeline measured by a written rule:
- a *value* claim holds when the measured value is within its stated tolerance of the study's number,
  and does not hold otherwise;
- a *direction* claim (A beats B) holds when the difference has the claimed sign and exceeds the
  measured spread (2 x the larger std over seeds, or a stated minimum); it does not hold when the
  difference has the opposite sign and exceeds the spread; otherwise it is inconclusive;
- a claim whose measurement is not produced by the pipeline is reported as "not measured".

Each rule is a small function ``metrics -> (measured text, verdict) | None``, unit-tested on hand-made metric
dicts (tests/test_claims.py); ``claims_table`` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .metrics import attack_rows, best_method, drop_interval, get, hard_acc, triggered_drop_interval, wilson

HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURED = "holds", "does not hold", "inconclusive", "not measured"
# the rules as the report states them
RULES_TEXT = """Each claim of the study is checked against what the pipeline measured by a written rule:
- a *value* claim holds when the measured value is within its stated tolerance of the study's number,
  and does not hold otherwise;
- a *direction* claim (A beats B) holds when the difference has the claimed sign and exceeds the
  measured spread (2 x the larger std over seeds, or a stated minimum); it does not hold when the
  difference has the opposite sign and exceeds the spread; otherwise it is inconclusive;
- a claim whose measurement is not produced by the pipeline is reported as "not measured"."""


@dataclass
class Claim:
    text: str
    study: str
    measure: Callable[[dict], tuple[str, str] | None]  # metrics -> (measured text, verdict) or None


def within(value: float, target: float, tol: float) -> str:
    return HOLDS if abs(value - target) <= tol else FAILS


def _lazy_hard(m):
    """Within 5 points of the study's 17.8%: over seeds, holds when mean ± 2 std lies inside that band,
    fails when it lies outside, inconclusive when it straddles a band edge (one seed: the value alone)."""
    ms = get(m, "train_lazy.summary.hard_acc")
    if ms is None:
        v = get(m, "train_lazy.test_hard.acc")
        return None if v is None else (f"{100 * v:.2f}% (final epoch, one seed)", within(100 * v, 17.8, 5.0))
    n = get(m, "train_lazy.n_seeds") or 1
    mean, half = 100 * ms["mean"], 200 * ms["std"]
    best = get(m, "train_lazy.summary.best_epoch_hard_acc")
    text = f"{mean:.2f} ± {100 * ms['std']:.2f}% (final epoch, {n} seeds)"
    if best:
        text += f"; test-selected best epoch {100 * best['mean']:.2f} ± {100 * best['std']:.2f}% (not used)"
    lo, hi = mean - half, mean + half
    if lo >= 12.8 and hi <= 22.8:
        return text, HOLDS
    if hi < 12.8 or lo > 22.8:
        return text, FAILS
    return text, INCONCLUSIVE


def _red_one(m):
    """Holds when most red-painted test 1s are predicted 0 (the 95% Wilson interval of that share above one
    half), fails when the interval lies below one half; the first image alone (the study's probe) is reported."""
    p = get(m, "train_lazy.red_one_probe")
    if p is None:
        return None
    lo, hi = wilson(p["pred_zero_rate"], p["n"])
    hlo, hhi = wilson(p["hard_test_red_ones_pred_zero_rate"], p["hard_test_red_ones_n"])
    verdict = HOLDS if lo > 0.5 else (FAILS if hi < 0.5 else INCONCLUSIVE)
    return (
        f"first test 1 painted red -> {p['first_pred']}; {100 * p['pred_zero_rate']:.1f}% "
        f"[{100 * lo:.1f}, {100 * hi:.1f}] of all {p['n']} red-painted test 1s -> 0; hard-test 1s that are red "
        f"(with background) -> 0 in {100 * p['hard_test_red_ones_pred_zero_rate']:.1f}% [{100 * hlo:.1f}, "
        f"{100 * hhi:.1f}] (rule: the share predicted 0, 95% Wilson interval, above one half)",
        verdict,
    )


def _method_claim(method: str, study: float, study_epochs: int, tol: float = 5.0):
    def measure(m):
        r = get(m, f"train_debiased.{method}.summary.hard_acc")
        if r is None:
            return None
        cfg = get(m, f"train_debiased.{method}.method")
        text = (
            f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}% ({cfg['n_seeds']} seeds, {cfg['epochs']} epochs, "
            "final epoch)"
        )
        if cfg["epochs"] < study_epochs:  # a shortened schedule cannot confirm or refute a recipe's number
            return (
                text + f"; the study trained {study_epochs} epochs: the `faithful` preset does "
                "(`python -m shortcutlab.preset faithful`)",
                INCONCLUSIVE,
            )
        return text, within(100 * r["mean"], study, tol + 200 * r["std"])

    return measure


def _pgd_beats_fgsm(m):
    rows = attack_rows(m)
    if not rows:
        return None
    diffs = [
        p - f
        for r in rows.values()
        for key in (("t_pgd", "t_fgsm"), ("u_pgd", "u_fgsm"))
        for p, f in zip(r[key[0]], r[key[1]], strict=True)
    ]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = (sum((d - mean) ** 2 for d in diffs) / max(n - 1, 1)) ** 0.5
    lo, hi = mean - 1.96 * sd / n**0.5, mean + 1.96 * sd / n**0.5
    worse = sum(d < -0.01 for d in diffs)
    verdict = HOLDS if lo > 0 and worse == 0 else (FAILS if hi < 0 else INCONCLUSIVE)
    return (
        f"PGD − FGSM success: mean {100 * mean:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] (95% interval over "
        f"{n} (model, eps, attack) cells); PGD lower by more than 1 point in {worse} (rule: the interval above 0 "
        "and PGD never lower)",
        verdict,
    )


SHAPE_LEVEL = 0.5  # a "debiased" model, for the robustness claims, is one with >= 50% hard-test accuracy


def _eps_needed(r) -> float:
    return r["min_eps_pgd"] if r["min_eps_pgd"] is not None else float("inf")


def _debiased_more_vulnerable(m):
    rows = attack_rows(m)
    if "lazy" not in rows:
        return None
    lazy = rows["lazy"]
    backdoored = {k for k, v in (m.get("analysed_models") or {}).items() if v.startswith("data/models/backdoor/")}
    deb = [k for k in rows if k not in ("lazy", "oracle", *backdoored) and (hard_acc(m, k) or 0) >= SHAPE_LEVEL]
    if not deb:
        return None
    k5 = min(range(len(lazy["eps"])), key=lambda i: abs(lazy["eps"][i] - 0.05))

    def fmt(e):
        return "> max" if e == float("inf") else f"{e:g}"

    n_lazy = lazy["n_targeted"]
    l_lo, l_hi = wilson(lazy["t_pgd"][k5], n_lazy)
    more, less = [], []
    for k in deb:
        lo, hi = wilson(rows[k]["t_pgd"][k5], rows[k]["n_targeted"])
        if _eps_needed(rows[k]) < _eps_needed(lazy) and lo > l_hi:
            more.append(k)
        elif _eps_needed(rows[k]) > _eps_needed(lazy) and hi < l_lo:
            less.append(k)

    def at(k):
        r = rows[k]
        lo, hi = wilson(r["t_pgd"][k5], r["n_targeted"])
        return f"{k} {100 * r['t_pgd'][k5]:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"

    text = (
        f"min eps for ≥90% targeted 7→3 PGD success (hard test): lazy {fmt(_eps_needed(lazy))}; "
        + ", ".join(f"{k} {fmt(_eps_needed(rows[k]))}" for k in deb)
        + f". Success at eps={lazy['eps'][k5]} (95% Wilson): {at('lazy')}; "
        + "; ".join(at(k) for k in deb)
        + " (rule: a model is more vulnerable when it needs a smaller eps and its interval at that eps lies "
        "above the lazy model's; holds for a majority of the debiased models)"
    )
    verdict = HOLDS if len(more) > len(deb) / 2 else (FAILS if len(less) > len(deb) / 2 else INCONCLUSIVE)
    return text, verdict


def _beats_study_best(m):
    db = m.get("train_debiased") or {}
    best = best_method(m)
    if best is None or "oracle" not in db:
        return None
    b, o = db[best]["summary"]["hard_acc"], db["oracle"]["summary"]["hard_acc"]
    n = db[best]["method"]["n_seeds"]
    spread = 2 * max(b["std"], o["std"]) if n > 1 else 0.0  # one seed: the values alone
    gap = o["mean"] - b["mean"]
    ok = b["mean"] - spread >= 0.98 and gap + spread <= 0.01
    bad = b["mean"] + spread < 0.98 or gap - spread > 0.01
    return (
        f"best label-free method {best}: {100 * b['mean']:.2f} ± {100 * b['std']:.2f}% (mean ± std of {n} "
        f"seed{'s' * (n > 1)}, final epoch); oracle reference {100 * o['mean']:.2f} ± {100 * o['std']:.2f}%; "
        "study's best 95.84% (rule, with 2 std of margin: ≥ 98.0% and within 1 point of the oracle)",
        HOLDS if ok else (FAILS if bad else INCONCLUSIVE),
    )


def _backdoor_seed(v: dict) -> tuple[str, str]:
    """One 1%-poison seed against the rule, every quantity with its 95% interval: ASR_mass@0.5 >= 90%, false
    trigger <= 5%, accuracy drop against the clean model <= 1 point on the validation split and on the hard test,
    and (where recorded) accuracy lost to the trigger itself <= 1 point on both (the model still classifies
    triggered inputs correctly)."""
    n = v["val"]["n_images"]
    asr_ = wilson(v["val"]["triggered"]["asr"], n)
    false = wilson(v["val"]["false_trigger"]["asr"], n)
    drops = {"drop val": drop_interval(v, "val"), "drop hard": drop_interval(v, "test_hard")}
    for split, label in (("val", "trigger costs val"), ("test_hard", "trigger costs hard")):
        d = triggered_drop_interval(v, split)
        if d is not None:
            drops[label] = d
    ok = asr_[0] >= 0.9 and false[1] <= 0.05 and all(hi <= 0.01 for _, hi in drops.values())
    bad = asr_[1] < 0.9 or false[0] > 0.05 or any(lo > 0.01 for lo, _ in drops.values())
    text = (
        f"ASR {100 * v['val']['triggered']['asr']:.1f}% [{100 * asr_[0]:.1f}, {100 * asr_[1]:.1f}], "
        f"false {100 * v['val']['false_trigger']['asr']:.1f}% (≤ {100 * false[1]:.1f}), "
        + ", ".join(
            f"{k} {100 * (lo + hi) / 2:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]" for k, (lo, hi) in drops.items()
        )
        + " pt"
    )
    return text, HOLDS if ok else (FAILS if bad else INCONCLUSIVE)


def _backdoor_1pct(m):
    bd = m.get("train_backdoor") or {}
    runs = [
        k
        for k, v in bd.items()
        if k != "clean" and v["run"]["poison_rate"] == 0.01 and v["run"]["explanation_method"] == 1
    ]
    if not runs:
        return None
    per = [_backdoor_seed(bd[k]) for k in runs]
    verdicts = {v for _, v in per}
    verdict = HOLDS if verdicts == {HOLDS} else (FAILS if FAILS in verdicts else INCONCLUSIVE)
    return (
        f"{len(runs)} seeds at 1% — "
        + "; ".join(f"{k}: {t}" for k, (t, _) in zip(runs, per, strict=True))
        + " (rule, on every seed's 95% interval: ASR ≥ 90%, false trigger ≤ 5%, accuracy drop against the clean "
        "model ≤ 1 pt on validation and hard test, accuracy lost to the trigger ≤ 1 pt on both)",
        verdict,
    )


def _neurons(m):
    n = get(m, "explain.lazy.neurons")
    if n is None:
        return None
    bands = n["poly_bands"]
    top = max(bands, key=bands.get)
    ok = abs(n["csi_gt_3"] - 15) <= 5 and top.startswith("weakly")
    return (
        f"{n['csi_gt_3']} of {n['alive']} live FC-1 neurons have CSI > 3.0 (CSI mean {n['csi_mean']:.2f}, "
        f"75th pct {n['csi_p75']:.2f}); polysemanticity bands {bands}, mean {n['poly_mean']:.2f} "
        "(rule: 15 ± 5 neurons and the weakly-monosemantic band the largest). Note: over ten colors "
        "(max − mean)/std is at most (n − 1)/√n = 2.85 with the sample std (3.0 with the population std), "
        "so 'CSI > 3.0' cannot occur as the study defines it",
        HOLDS if ok else FAILS,
    )


def _sae_recon(m):
    s = get(m, "sae.lazy-l1")
    if s is None:
        return None
    h = s["held_out"]
    ok = h["explained_variance"] >= 0.99 and h["l0_fraction"] >= 0.5
    return (
        f"l1 SAE (the study's recipe + fixes): explained variance {h['explained_variance']:.4f} with "
        f"{100 * h['l0_fraction']:.1f}% of features active per sample; TopK: "
        f"{get(m, 'sae.lazy-topk.held_out.explained_variance'):.4f} at "
        f"{100 * get(m, 'sae.lazy-topk.held_out.l0_fraction'):.1f}% (rule: the study's claim of ≥ 99% "
        "reconstruction at ~70% density holds if EV ≥ 0.99 and density ≥ 50%)",
        HOLDS if ok else FAILS,
    )


def _sae_selectivity(m):
    a, b = get(m, "sae.lazy-topk.features"), get(m, "sae.debiased-topk.features")
    if a is None or b is None:
        return None
    d = b["digit_selectivity"] - a["digit_selectivity"]
    return (
        f"TopK SAEs at matched L0: digit selectivity lazy {a['digit_selectivity']:.2f} vs debiased "
        f"{b['digit_selectivity']:.2f}; entropy {a['mean_entropy_bits']:.2f} vs {b['mean_entropy_bits']:.2f} "
        f"bits; color-like/shape-like features {a['color_like']}/{a['shape_like']} vs "
        f"{b['color_like']}/{b['shape_like']} (rule: holds if the debiased model's selectivity is higher by "
        "> 0.05)",
        HOLDS if d > 0.05 else (FAILS if d < -0.05 else INCONCLUSIVE),
    )


def _attention_diffuse(m):
    e = get(m, "explain.attention.test_hard.attention")
    if e is None:
        return None
    d = get(m, "explain.attention_debiased.test_hard.attention")
    acc = hard_acc(m, "attention")
    text = (
        f"attention model trained on the biased data (hard test {100 * acc:.1f}%): attention-map "
        f"concentration ratio {e['concentration_ratio']:.2f}, foreground mass {e['foreground_mass']:.2f}"
        + (
            f"; its debiased variant ({100 * hard_acc(m, 'attention_debiased'):.1f}%): "
            f"{d['concentration_ratio']:.2f}, {d['foreground_mass']:.2f}"
            if d
            else ""
        )
        + " (rule: ratio > 0.6 = diffuse, as the study defines it)"
    )
    return text, HOLDS if e["concentration_ratio"] > 0.6 else FAILS


# the study's four recipes: its hard-test % and epochs, and its claim on each (read by the report too)
RECIPE_STUDY = {"consistency": (91.35, 25), "focal": (21.24, 30), "shape_cnn": (95.84, 20), "suppression": (35.78, 15)}
RECIPE_CLAIMS = {
    "consistency": Claim(
        "Color-consistency training reaches 91.35% on the hard test (±5 points + 2 std)",
        "91.35% (its best epoch on the hard test, 23 of 25; its final epoch: 91.12%)",
        _method_claim("consistency", *RECIPE_STUDY["consistency"]),
    ),
    "focal": Claim(
        "Focal loss fails: 21.24% on the hard test (±5 points + 2 std)",
        "21.24% (its final epoch, 30, marked best)",
        _method_claim("focal", *RECIPE_STUDY["focal"]),
    ),
    "shape_cnn": Claim(
        "The shape-biased CNN reaches 95.84% on the hard test (±5 points + 2 std)",
        "95.84% (its best epoch on the hard test, 17 of 20; its final epoch: 95.00%)",
        _method_claim("shape_cnn", *RECIPE_STUDY["shape_cnn"]),
    ),
    "suppression": Claim(
        "Neuron suppression fails: 35.78% on the hard test (±5 points + 2 std)",
        "35.78% (its final epoch, 15)",
        _method_claim("suppression", *RECIPE_STUDY["suppression"]),
    ),
}


CLAIMS: list[Claim] = [
    Claim("Lazy model hard-test accuracy ≈ 17.8% (holds within ±5 points)", "17.8%", _lazy_hard),
    Claim("Red-1 probe: a digit 1 colored red is predicted as 0", "predicts 0", _red_one),
    Claim(
        "A spatial attention layer after the lazy network's second conv spreads attention uniformly "
        "(concentration ratio 0.65–0.78, above 0.6)",
        "0.65–0.78",
        _attention_diffuse,
    ),
    Claim(
        "15 FC neurons of the lazy model have CSI > 3.0; most neurons are weakly monosemantic",
        "15; poly ≈ 0.4–0.5",
        _neurons,
    ),
    *RECIPE_CLAIMS.values(),
    Claim(
        "Target (issue): the best label-free method reaches ≥ 98.0% on the hard test, within 1 point of the "
        "oracle, beating the study's best (95.84%)",
        "95.84% (shape_cnn)",
        _beats_study_best,
    ),
    Claim(
        "PGD is a stronger attack than FGSM (higher success at the same eps)",
        "PGD 70–100% vs FGSM 60–90%",
        _pgd_beats_fgsm,
    ),
    Claim(
        "Debiased models are more vulnerable: they need a smaller eps for >90% targeted success than the lazy "
        "model (majority of debiased models with ≥50% hard-test accuracy)",
        "yes (20 images, eps 0.05)",
        _debiased_more_vulnerable,
    ),
    Claim("The lazy model's SAE reconstructs 99.97% with 70% of features active", "99.97% at 70% density", _sae_recon),
    Claim(
        "The robust (debiased) model's SAE features are more selective than the lazy model's (0.90 vs 0.76)",
        "0.90 vs 0.76",
        _sae_selectivity,
    ),
    Claim(
        "An explanation-aware backdoor works with ~1% poisoned data (stealthy: accuracy kept, Grad-CAM moved)",
        "works at 1% (the study's own runs: 20% accuracy, 0% ASR)",
        _backdoor_1pct,
    ),
]


def claims_table(metrics: dict) -> list[dict]:
    rows = []
    for c in CLAIMS:
        r = c.measure(metrics)
        measured, verdict = r if r is not None else ("—", NOT_MEASURED)
        rows.append({"claim": c.text, "study": c.study, "measured": measured, "verdict": verdict})
    return rows


def verdict_counts(rows: list[dict]) -> dict[str, int]:
    return {
        "holds": sum(r["verdict"] == HOLDS for r in rows),
        "does_not_hold": sum(r["verdict"] == FAILS for r in rows),
        "inconclusive": sum(r["verdict"] == INCONCLUSIVE for r in rows),
        "not_measured": sum(r["verdict"] == NOT_MEASURED for r in rows),
    }
