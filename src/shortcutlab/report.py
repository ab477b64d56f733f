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
from .params import TrainDebiased

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
    db = metrics.get("train_debiased")
    if db:
        s["debiased"] = {m: {k: v["summary"][k]["mean"] for k in ("hard_acc", "easy_acc", "val_acc")}
                         | {"hard_acc_std": v["summary"]["hard_acc"]["std"]} for m, v in db.items()}
        methods = [m for m in db if m != "oracle"]
        if methods:
            best = max(methods, key=lambda m: db[m]["summary"]["hard_acc"]["mean"])
            s["best_debiased_hard_acc"] = db[best]["summary"]["hard_acc"]["mean"]
    bd = metrics.get("train_backdoor") or {}
    if "pct1" in bd:
        v = bd["pct1"]
        s["backdoor_1pct"] = {"asr_mass_0.5": v["val"]["triggered"]["asr_mass_0.5"],
                              "clean_acc_drop": v["clean_acc_drop"],
                              "false_trigger": v["val"]["false_trigger"]["asr_mass_0.5"]}
    for k, v in (metrics.get("sae") or {}).items():
        s.setdefault("sae", {})[k] = {"explained_variance": v["held_out"]["explained_variance"],
                                      "l0": v["held_out"]["l0"], "dead_fraction": v["held_out"]["dead_fraction"],
                                      "acc_recovered": v["recovery"]["acc_recovered"]}
    ta = metrics.get("train_attention") or {}
    if ta:
        s["attention_models"] = {k: {"hard_acc": v["test_hard"]["acc"], "val_acc": v["val"]["acc"]}
                                 for k, v in ta.items()}
    ar = attack_rows(metrics)
    if ar:
        s["attack"] = {k: {"targeted_pgd_success_max_eps": r["t_pgd"][-1] if r["t_pgd"] else 0.0,
                           "robust_acc_pgd_min_eps": r["robust_pgd"][0]} for k, r in ar.items()}
    return s


def attack_rows(metrics: dict) -> dict[str, dict]:
    """Per attacked model: targeted (hard test) and untargeted success by epsilon, min eps for 90%."""
    out = {}
    for name, a in (metrics.get("attack") or {}).items():
        t = a["targeted"].get("test_hard", {})
        eps = [float(k[4:]) for k in a["untargeted"]["pgd"]]
        out[name] = {
            "eps": eps,
            "t_pgd": [v["success"] for v in t.get("pgd", {}).values()],
            "t_fgsm": [v["success"] for v in t.get("fgsm", {}).values()],
            "u_pgd": [v["success_on_clean_correct"] for v in a["untargeted"]["pgd"].values()],
            "u_fgsm": [v["success_on_clean_correct"] for v in a["untargeted"]["fgsm"].values()],
            "robust_pgd": [v["robust_acc"] for v in a["untargeted"]["pgd"].values()],
            "min_eps_pgd": t.get("min_eps_90_pgd"), "min_eps_fgsm": t.get("min_eps_90_fgsm"),
            "clean_acc": a["untargeted"]["clean_acc"], "n_targeted": t.get("n_images", 0),
        }
    return out


def hard_acc(metrics: dict, name: str) -> float | None:
    path = (metrics.get("analysed_models") or {}).get(name, "")
    if path.startswith("data/models/backdoor/"):  # an analysed backdoor checkpoint: its training run's metrics
        return get(metrics, f"train_backdoor.{Path(path).stem}.test_hard_acc")
    if name == "lazy":
        return get(metrics, "train_lazy.test_hard.acc")
    if name in (metrics.get("train_attention") or {}):
        return get(metrics, f"train_attention.{name}.test_hard.acc")
    r = get(metrics, f"train_debiased.{name}.summary.hard_acc")
    return r["mean"] if r else None


def best_method(metrics: dict) -> str | None:
    db = metrics.get("train_debiased") or {}
    methods = [m for m in db if m != "oracle"]
    return max(methods, key=lambda m: db[m]["summary"]["hard_acc"]["mean"]) if methods else None


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


def _method_claim(method: str, study: float, study_epochs: int, tol: float = 5.0):
    def measure(m):
        r = get(m, f"train_debiased.{method}.summary.hard_acc")
        if r is None:
            return None
        cfg = get(m, f"train_debiased.{method}.method")
        text = (f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f}% ({cfg['n_seeds']} seeds, {cfg['epochs']} epochs, "
                "final epoch)")
        if cfg["epochs"] < study_epochs:  # a shortened schedule cannot confirm or refute a recipe's number
            return (text + f"; the study trained {study_epochs} epochs: run `python -m shortcutlab.preset study`",
                    INCONCLUSIVE)
        return text, within(100 * r["mean"], study, tol + 200 * r["std"])

    return measure


def _pgd_beats_fgsm(m):
    rows = attack_rows(m)
    if not rows:
        return None
    diffs = [p - f for r in rows.values() for key in (("t_pgd", "t_fgsm"), ("u_pgd", "u_fgsm"))
             for p, f in zip(r[key[0]], r[key[1]], strict=True)]
    mean = sum(diffs) / len(diffs)
    worse = sum(d < -0.01 for d in diffs)
    verdict = HOLDS if mean > 0.01 and worse == 0 else (FAILS if mean < -0.01 else INCONCLUSIVE)
    return (f"PGD − FGSM success: mean {100 * mean:+.1f} points over {len(diffs)} (model, eps, attack) cells; "
            f"PGD lower in {worse}", verdict)


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
    smaller = [k for k in deb if _eps_needed(rows[k]) < _eps_needed(lazy)]
    larger = [k for k in deb if _eps_needed(rows[k]) > _eps_needed(lazy)]

    def fmt(e):
        return "> max" if e == float("inf") else f"{e:g}"

    text = (f"min eps for ≥90% targeted 7→3 PGD success (hard test): lazy {fmt(_eps_needed(lazy))}; "
            + ", ".join(f"{k} {fmt(_eps_needed(rows[k]))}" for k in deb)
            + f". At eps={lazy['eps'][k5]}: lazy {100 * lazy['t_pgd'][k5]:.1f}%, debiased mean "
            f"{100 * sum(rows[k]['t_pgd'][k5] for k in deb) / len(deb):.1f}%")
    verdict = HOLDS if len(smaller) > len(deb) / 2 else (FAILS if len(larger) > len(deb) / 2 else INCONCLUSIVE)
    return text, verdict


def _beats_study_best(m):
    db = m.get("train_debiased") or {}
    best = best_method(m)
    if best is None or "oracle" not in db:
        return None
    b, o = db[best]["summary"]["hard_acc"], db["oracle"]["summary"]["hard_acc"]
    n = db[best]["method"]["n_seeds"]
    ok = 100 * b["mean"] >= 98.0 and 100 * (o["mean"] - b["mean"]) <= 1.0
    return (f"best label-free method {best}: {100 * b['mean']:.2f}% (mean of {n} seed{'s' * (n > 1)}, final epoch); "
            f"oracle reference {100 * o['mean']:.2f}%; study's best 95.84% (rule: ≥ 98.0% and within 1 point of the "
            "oracle)", HOLDS if ok else FAILS)


def _backdoor_1pct(m):
    bd = m.get("train_backdoor") or {}
    runs = [k for k, v in bd.items() if k != "clean" and v["run"]["poison_rate"] == 0.01
            and v["run"]["explanation_method"] == 1]
    if not runs:
        return None
    asr5 = [bd[k]["val"]["triggered"]["asr_mass_0.5"] for k in runs]
    drop = [bd[k]["clean_acc_drop"] for k in runs]
    ft = [bd[k]["val"]["false_trigger"]["asr_mass_0.5"] for k in runs]
    hard = [bd[k].get("clean_acc_drop_test_hard") for k in runs]
    ok = all(a >= 0.9 for a in asr5) and all(d <= 0.01 for d in drop) and all(f <= 0.05 for f in ft)
    bad = all(a < 0.5 for a in asr5)
    return (f"{len(runs)} seeds at 1%: ASR_mass@0.5 {', '.join(f'{100 * a:.1f}%' for a in asr5)}; clean-accuracy "
            f"drop {', '.join(f'{100 * d:+.2f}' for d in drop)} pt (validation); false-trigger "
            f"{', '.join(f'{100 * f:.1f}%' for f in ft)} (rule: every seed ASR ≥ 90%, drop ≤ 1 pt, false ≤ 5%)"
            + (f"; not in the rule but not stealthy: hard-test accuracy drops "
               f"{', '.join(f'{100 * h:+.1f}' for h in hard)} pt" if None not in hard else ""),
            HOLDS if ok else (FAILS if bad else INCONCLUSIVE))


def _neurons(m):
    n = get(m, "explain.lazy.neurons")
    if n is None:
        return None
    bands = n["poly_bands"]
    top = max(bands, key=bands.get)
    ok = abs(n["csi_gt_3"] - 15) <= 5 and top.startswith("weakly")
    return (f"{n['csi_gt_3']} of {n['alive']} live FC-1 neurons have CSI > 3.0 (CSI mean {n['csi_mean']:.2f}, "
            f"75th pct {n['csi_p75']:.2f}); polysemanticity bands {bands}, mean {n['poly_mean']:.2f} "
            "(rule: 15 ± 5 neurons and the weakly-monosemantic band the largest). Note: over ten colors "
            "(max − mean)/std is at most (n − 1)/√n = 2.85 with the sample std (3.0 with the population std), "
            "so 'CSI > 3.0' cannot occur as the study defines it", HOLDS if ok else FAILS)


def _sae_recon(m):
    s = get(m, "sae.lazy-l1")
    if s is None:
        return None
    h = s["held_out"]
    ok = h["explained_variance"] >= 0.99 and h["l0_fraction"] >= 0.5
    return (f"l1 SAE (the study's recipe + fixes): explained variance {h['explained_variance']:.4f} with "
            f"{100 * h['l0_fraction']:.1f}% of features active per sample; TopK: "
            f"{get(m, 'sae.lazy-topk.held_out.explained_variance'):.4f} at "
            f"{100 * get(m, 'sae.lazy-topk.held_out.l0_fraction'):.1f}% (rule: the study's claim of ≥ 99% "
            "reconstruction at ~70% density holds if EV ≥ 0.99 and density ≥ 50%)", HOLDS if ok else FAILS)


def _sae_selectivity(m):
    a, b = get(m, "sae.lazy-topk.features"), get(m, "sae.debiased-topk.features")
    if a is None or b is None:
        return None
    d = b["digit_selectivity"] - a["digit_selectivity"]
    return (f"TopK SAEs at matched L0: digit selectivity lazy {a['digit_selectivity']:.2f} vs debiased "
            f"{b['digit_selectivity']:.2f}; entropy {a['mean_entropy_bits']:.2f} vs {b['mean_entropy_bits']:.2f} "
            f"bits; color-like/shape-like features {a['color_like']}/{a['shape_like']} vs "
            f"{b['color_like']}/{b['shape_like']} (rule: holds if the debiased model's selectivity is higher by "
            "> 0.05)", HOLDS if d > 0.05 else (FAILS if d < -0.05 else INCONCLUSIVE))


def _attention_diffuse(m):
    e = get(m, "explain.attention.test_hard.attention")
    if e is None:
        return None
    d = get(m, "explain.attention_debiased.test_hard.attention")
    acc = hard_acc(m, "attention")
    text = (f"attention model trained on the biased data (hard test {100 * acc:.1f}%): attention-map "
            f"concentration ratio {e['concentration_ratio']:.2f}, foreground mass {e['foreground_mass']:.2f}"
            + (f"; its debiased variant ({100 * hard_acc(m, 'attention_debiased'):.1f}%): "
               f"{d['concentration_ratio']:.2f}, {d['foreground_mass']:.2f}" if d else "")
            + " (rule: ratio > 0.6 = diffuse, as the study defines it)")
    return text, HOLDS if e["concentration_ratio"] > 0.6 else FAILS


CLAIMS: list[Claim] = [
    Claim("Lazy model hard-test accuracy ≈ 17.8% (holds within ±5 points)", "17.8%", _lazy_hard),
    Claim("Red-1 probe: a digit 1 colored red is predicted as 0", "predicts 0", _red_one),
    Claim("A spatial attention layer after the lazy network's second conv spreads attention uniformly "
          "(concentration ratio 0.65–0.78, above 0.6)", "0.65–0.78", _attention_diffuse),
    Claim("15 FC neurons of the lazy model have CSI > 3.0; most neurons are weakly monosemantic", "15; poly ≈ 0.4–0.5",
          _neurons),
    Claim("Color-consistency training reaches 91.35% on the hard test (±5 points + 2 std)", "91.35%",
          _method_claim("consistency", 91.35, 25)),
    Claim("Focal loss fails: 21.24% on the hard test (±5 points + 2 std)", "21.24%", _method_claim("focal", 21.24, 30)),
    Claim("The shape-biased CNN reaches 95.84% on the hard test (±5 points + 2 std)", "95.84%",
          _method_claim("shape_cnn", 95.84, 20)),
    Claim("Neuron suppression fails: 35.78% on the hard test (±5 points + 2 std)", "35.78%",
          _method_claim("suppression", 35.78, 15)),
    Claim("Target (issue): the best label-free method reaches ≥ 98.0% on the hard test, within 1 point of the "
          "oracle, beating the study's best (95.84%)", "95.84% (shape_cnn)", _beats_study_best),
    Claim("PGD is a stronger attack than FGSM (higher success at the same eps)", "PGD 70–100% vs FGSM 60–90%",
          _pgd_beats_fgsm),
    Claim("Debiased models are more vulnerable: they need a smaller eps for >90% targeted success than the lazy "
          "model (majority of debiased models with ≥50% hard-test accuracy)", "yes (20 images, eps 0.05)",
          _debiased_more_vulnerable),
    Claim("The lazy model's SAE reconstructs 99.97% with 70% of features active", "99.97% at 70% density",
          _sae_recon),
    Claim("The robust (debiased) model's SAE features are more selective than the lazy model's (0.90 vs 0.76)",
          "0.90 vs 0.76", _sae_selectivity),
    Claim("An explanation-aware backdoor works with ~1% poisoned data (stealthy: accuracy kept, Grad-CAM moved)",
          "works at 1% (the study's own runs: 20% accuracy, 0% ASR)", _backdoor_1pct),
]


def claims_table(metrics: dict) -> list[dict]:
    rows = []
    for c in CLAIMS:
        r = c.measure(metrics)
        measured, verdict = r if r is not None else ("—", NOT_MEASURED)
        rows.append({"claim": c.text, "study": c.study, "measured": measured, "verdict": verdict})
    return rows


# ------------------------------------------------------------------------------------------ report
def _ties(db: dict, order: list[str]) -> list[str]:
    out = []
    for a, b in zip(order, order[1:], strict=False):
        sa, sb = db[a]["summary"]["hard_acc"], db[b]["summary"]["hard_acc"]
        if min(db[a]["method"]["n_seeds"], db[b]["method"]["n_seeds"]) < 2:
            continue  # one seed: no spread to compare against
        if abs(sa["mean"] - sb["mean"]) < max(sa["std"], sb["std"]):
            out.append(f"{a} ~ {b}")
    return out


def attack_figure(path, metrics: dict) -> None:
    import matplotlib.pyplot as plt

    from .io import save_figure

    ar = attack_rows(metrics)
    if not ar:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, r in ar.items():
        axes[0].plot(r["eps"], r["t_pgd"], marker="o", label=k)
        axes[1].plot(r["eps"], r["robust_pgd"], marker="o", label=k)
    axes[0].set(xlabel="eps", ylabel="targeted PGD success", title="targeted 7→3 (hard test)")
    axes[1].set(xlabel="eps", ylabel="robust accuracy", title="untargeted PGD")
    axes[1].legend(fontsize=6)
    fig.tight_layout()
    save_figure(path, fig)


def explain_figure(path, metrics: dict) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    from .io import save_figure

    ex = metrics.get("explain") or {}
    if not ex:
        return
    models = list(ex)
    first = ex[models[0]]["test_hard"]
    methods = [k for k in first if isinstance(first[k], dict) and "foreground_mass" in first[k]]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    width = 0.8 / len(methods)
    for j, meth in enumerate(methods):
        for ax, key in zip(axes[:2], ("foreground_mass", "insertion_auc"), strict=True):
            ax.bar(np.arange(len(models)) + j * width, [ex[m]["test_hard"][meth][key] for m in models], width,
                   label=meth)
            ax.set_title(key + " (hard test)")
    axes[2].bar(range(len(models)), [ex[m]["test_hard"]["color_share"]["mean"] for m in models])
    axes[2].set_title("color share (IG, hard test)")
    for ax in axes:
        ax.set_xticks(np.arange(len(models)) + (0.4 if ax is not axes[2] else 0), models, rotation=45, ha="right",
                      fontsize=7)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    save_figure(path, fig)


def backdoor_figure(path, metrics: dict) -> None:
    import matplotlib.pyplot as plt

    from .io import save_figure

    bd = {k: v for k, v in (metrics.get("train_backdoor") or {}).items()
          if k != "clean" and v["run"]["explanation_method"] == 1}
    if not bd:
        return
    rates = sorted({v["run"]["poison_rate"] for v in bd.values()})
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    for r in rates:
        vs = [v for v in bd.values() if v["run"]["poison_rate"] == r]
        ax[0].scatter([r] * len(vs), [100 * v["val"]["triggered"]["asr_mass_0.5"] for v in vs], color="tab:red")
        ax[1].scatter([r] * len(vs), [100 * v["clean_acc_drop"] for v in vs], color="tab:blue")
    for a, t in zip(ax, ("ASR_mass@0.5 %", "clean accuracy drop (points)"), strict=True):
        a.set_xscale("log")
        a.set_xlabel("poison rate")
        a.set_title(t)
    fig.tight_layout()
    save_figure(path, fig)


def debiasing_figure(path, metrics: dict) -> None:
    from . import figures

    db = metrics.get("train_debiased") or {}
    order = sorted(db, key=lambda k: -db[k]["summary"]["hard_acc"]["mean"])
    figures.bars(path, order, [100 * db[k]["summary"]["hard_acc"]["mean"] for k in order],
                 [100 * db[k]["summary"]["hard_acc"]["std"] for k in order], ylabel="hard-test accuracy %",
                 title="debiasing methods (mean ± std over seeds)", ylim=(0, 100))


def _methods_of(e: dict) -> list[str]:
    h = e["test_hard"]
    return [k for k in h if isinstance(h[k], dict) and "foreground_mass" in h[k]]


def attention_section(metrics: dict) -> list[str]:
    ta = metrics.get("train_attention") or {}
    if not ta:
        return []
    ex = metrics.get("explain") or {}
    rows = []
    for k, v in ta.items():
        mm = v["model"]
        rows.append([k, "vit" if mm["vit"] else "attention", mm.get("epochs", "—"), f"{mm['parameters']:,}",
                     pct(v["val"]["acc"]), pct(v["test_easy"]["acc"]), pct(v["test_hard"]["acc"]),
                     pct(v["test_hard"]["color_following"]), f"{v['train_seconds']:.0f}"])
    look = []
    for k in ta:
        e = ex.get(k, {}).get("test_hard", {})
        for meth in ("attention", "rollout", "grad_rollout", "gradcam", "gradcam_final_tokens", "integrated_gradients"):
            if meth in e:
                r = e[meth]
                look.append([k, meth, f"{r['concentration_ratio']:.2f}", f"{r['foreground_mass']:.2f}",
                             f"{100 * r['degenerate_rate']:.1f}", f"{100 * r.get('class_identical_rate', 0):.1f}",
                             f"{r['insertion_auc']:.3f}", f"{r['sanity_spearman']:.2f}"])
    checks = []

    def h(model, meth):
        return ex.get(model, {}).get("test_hard", {}).get(meth)

    for biased, deb, meth in (("attention", "attention_debiased", "attention"), ("vit", "vit_debiased", "rollout"),
                              ("vit", "vit_debiased", "grad_rollout")):
        a, b = h(biased, meth), h(deb, meth)
        if a and b:
            ok = b["concentration_ratio"] < a["concentration_ratio"] and b["foreground_mass"] > a["foreground_mass"]
            checks.append([f"{meth}: diffuse on `{biased}`, concentrated on the digit for `{deb}`",
                           f"concentration {a['concentration_ratio']:.2f} → {b['concentration_ratio']:.2f}, "
                           f"fg mass {a['foreground_mass']:.2f} → {b['foreground_mass']:.2f}", "yes" if ok else "no"])
    vits = [k for k in ta if h(k, "gradcam")]
    if vits:
        inp = ("saliency", "input_x_gradient", "smoothgrad", "integrated_gradients")

        def deg(k, m):
            return max(ex[k][sp][m]["degenerate_rate"] for sp in ("test_hard", "test_easy")) if m in ex[k][
                "test_hard"] else None

        vit_like = [k for k in vits if deg(k, "rollout") is not None]
        for k in vit_like:
            g, f = deg(k, "gradcam"), deg(k, "gradcam_final_tokens")
            i = max(deg(k, m) for m in inp if deg(k, m) is not None)
            checks.append([f"`{k}`: Grad-CAM on the tokens degenerates far more often than input-gradient methods",
                           f"degenerate (the worse of hard and easy test): token Grad-CAM (last block's input) "
                           f"{100 * g:.1f}%, on the last block's "
                           f"output tokens {100 * f:.1f}%; input-gradient methods ≤ {100 * i:.1f}%",
                           "yes" if g > i + 0.05 else "no (only on the output tokens)" if f > i + 0.05 else "no"])
    return ["## Attention models: where they look", "",
            "`attention`: the study's two-conv network with a spatial attention layer after the second conv (1×1 "
            "conv → softmax over the 7×7 positions → attention-weighted pooling). `vit`: a tiny vision transformer "
            "(4×4 patches → 49 tokens + a class token). `*_debiased`: the same architecture trained with the "
            "color-consistency objective (the best debiasing method on the shared ConvNet). `vit_frozen`: the "
            "study's frozen-backbone case — a linear head trained on the biased data on top of the frozen "
            "`vit_debiased` backbone. Final-epoch models; no selection on any test split.", "",
            md_table(["model", "arch", "epochs", "parameters", "val", "easy test", "hard test", "hard color-following",
                      "train s"], rows), "",
            "Where they look (hard test, maps of the predicted class): concentration ratio (fraction of pixels "
            "holding 80% of the positive map; uniform ≈ 0.8), foreground mass, degenerate %, identical-for-two-"
            "classes %, insertion AUC, sanity ρ (see the explanation section for definitions):", "",
            md_table(["model", "method", "concentration", "fg mass", "degenerate %", "class-identical %",
                      "insertion", "sanity ρ"], look), "",
            "The issue's expected shape, checked against these numbers (reported as measured either way):", "",
            md_table(["expected", "measured", "as expected?"], checks), ""]


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
    db = metrics.get("train_debiased")
    if db:
        rows = []
        order = sorted(db, key=lambda k: -db[k]["summary"]["hard_acc"]["mean"])
        for k in order:
            v, sm = db[k], db[k]["summary"]
            label = f"{k} (reference: color-decorrelated training data)" if k == "oracle" else k
            rows.append([label, TrainDebiased().method(k).arch, v["method"]["epochs"], v["method"]["n_seeds"],
                         f"{100 * sm['hard_acc']['mean']:.2f} ± {100 * sm['hard_acc']['std']:.2f}"
                         if v["method"]["n_seeds"] > 1 else f"{100 * sm['hard_acc']['mean']:.2f} (1 seed)",
                         f"{100 * sm['easy_acc']['mean']:.2f}", f"{100 * sm['val_acc']['mean']:.2f}",
                         f"{100 * sm['worst_class_hard_acc']['mean']:.2f}",
                         f"{100 * sm['hard_color_following']['mean']:.2f}",
                         f"{sm['train_seconds']['mean']:.0f}", f"{sm['images_per_s']['mean']:.0f}"])
        parts += ["## Debiasing methods", "",
                  "Trained on the 95%-biased train split only; final-epoch models (no selection on any split); "
                  "mean ± std over seeds. Rows whose hard-test means differ by less than the larger std are ties; "
                  "single-seed rows have no spread and are not compared.",
                  "",
                  md_table(["method", "arch", "epochs", "seeds", "hard test %", "easy %", "val %", "worst class %",
                            "color-following %", "train s", "images/s"], rows), "",
                  "![debiasing](plots/evaluate/debiasing.png)", ""]
        ties = _ties(db, order)
        if ties:
            parts += ["Ties (difference smaller than the spread): " + "; ".join(ties), ""]
    parts += attention_section(metrics)
    ar = attack_rows(metrics)
    if ar:
        eps = next(iter(ar.values()))["eps"]
        rows = []
        for k, r in ar.items():
            ha = hard_acc(metrics, k)
            rows.append([k, f"{100 * ha:.1f}" if ha is not None else "—", r["n_targeted"],
                         " / ".join(f"{100 * v:.0f}" for v in r["t_fgsm"]),
                         " / ".join(f"{100 * v:.0f}" for v in r["t_pgd"]),
                         r["min_eps_pgd"] if r["min_eps_pgd"] is not None else f"> {eps[-1]}",
                         " / ".join(f"{100 * v:.0f}" for v in r["robust_pgd"])])
        parts += ["## Adversarial attacks", "",
                  f"L∞ FGSM and PGD at eps = {' / '.join(f'{e:g}' for e in eps)}. Targeted: the first n "
                  "hard-test images of the source digit (column n) pushed to the target digit (success = predicted "
                  "target). "
                  "Robust accuracy: untargeted PGD on a fixed hard-test subset. "
                  "Debiased models: the first seed's checkpoint.", "",
                  md_table(["model", "hard acc %", "targeted n", "targeted FGSM %", "targeted PGD %",
                            "min eps (PGD ≥ 90%)", "robust acc PGD %"], rows), "",
                  "![attack](plots/evaluate/attack.png)", ""]
    ex = metrics.get("explain")
    if ex:
        any_model = next(iter(ex.values()))
        methods = []  # the union over models, in order: a method only some architectures support is "n/a" elsewhere
        for e in ex.values():
            methods += [k for k in _methods_of(e) if k not in methods]
        rows = []
        for mname, e in ex.items():
            h = e["test_hard"]
            for meth in _methods_of(e):
                r = h[meth]
                rows.append([mname, meth, f"{r['concentration_ratio']:.2f}", f"{r['foreground_mass']:.2f}",
                             f"{100 * r['degenerate_rate']:.1f}", f"{r.get('class_contrast', 0.0):.3f}",
                             f"{r['deletion_auc']:.3f}", f"{r['insertion_auc']:.3f}",
                             f"{100 * r['falsification_rate']:.1f}", f"{r['sanity_spearman']:.2f}",
                             f"{r['maps_per_s']:.0f}"])
        cs = [[m, f"{e['test_hard']['color_share']['mean']:.3f}", f"{e['test_easy']['color_share']['mean']:.3f}"]
              for m, e in ex.items()]
        parts += ["## Explanations: how far to trust them", "",
                  "Color share: Integrated Gradients from the image's own grayscale version as a share of IG from "
                  "black (completeness makes it [f(x) − f(gray x)] / [f(x) − f(0)] for the predicted logit), "
                  "clipped to [0, 1]: how much of the evidence is color.", "",
                  md_table(["model", "color share (hard)", "color share (easy)"], cs), "",
                  f"Per model × method on {any_model['test_hard']['n_images']} fixed hard-test images, maps of the "
                  "predicted class. Foreground mass: share of positive attribution on the digit's stroke. "
                  "Degenerate: all-zero or near-uniform maps (reported, never replaced). "
                  "Class contrast: mean |map(pred) − map(true)| on misclassified images. "
                  "Deletion (lower is better) / insertion (higher is better) "
                  "AUC of the target probability. Falsification: share of images where removing the top-10% "
                  "pixels hurts less than removing random ones. Sanity: Spearman correlation with the same "
                  "architecture re-initialised (high = the map does not depend on what was learned).", "",
                  md_table(["model", "method", "concentration", "fg mass", "degenerate %", "class contrast",
                            "deletion", "insertion", "falsified %", "sanity ρ", "maps/s"], rows), "",
                  "![explain](plots/evaluate/explain.png)", ""]
        def cell(e, meth, key):
            if meth not in e["test_hard"]:
                return "n/a"
            return f"{100 * max(e[sp][meth].get(key, 0.0) for sp in ('test_hard', 'test_easy')):.1f}"

        drows = [[m] + [cell(e, meth, "degenerate_rate") for meth in methods] for m, e in ex.items()]
        irows = [[m] + [cell(e, meth, "class_identical_rate") for meth in methods] for m, e in ex.items()]
        parts += ["### Which methods are usable on which model", "",
                  "Degenerate-map rate % (all-zero or near-uniform maps; the larger of the hard and easy test), per "
                  "model × method; n/a: the method does not apply to the architecture (attention maps and rollout "
                  "need attention layers; `gradcam_final_tokens` is Grad-CAM on a transformer's last-block output "
                  "tokens, the layer the study used on a frozen CLIP ViT). A degenerate map is reported, never "
                  "replaced.", "",
                  md_table(["model", *methods], drows), "",
                  "Identical maps for two different classes % (predicted class vs runner-up class, the same after "
                  "min-max normalisation, on the sanity-check images; class-independent methods — attention maps, "
                  "rollout — are identical by construction):", "",
                  md_table(["model", *methods], irows), ""]
        nrows = []
        for mname, e in ex.items():
            n, pr = e["neurons"], e.get("probes_hard_test", {})
            if "hidden" not in n:
                continue
            sc, fl = pr.get("successes", {}), pr.get("failures", {})
            nrows.append([mname, f"{n['alive']}/{n['units']}", f"{n['csi_mean']:.2f}", n["csi_gt_3"],
                          f"{n['first_layer']['csi_mean']:.2f}", f"{n['hidden']['actmax_seed_consistency_mean']:.2f}",
                          f"{n['hidden']['intensity_cv_mean']:.2f}", f"{n['hidden']['spatial_cv_mean']:.2f}",
                          f"{sc.get('n', 0)} / {fl.get('n', 0)}",
                          f"{sc.get('concentration_pred', float('nan')):.2f} / "
                          f"{fl.get('concentration_pred', float('nan')):.2f}"])
        if nrows:
            parts += ["### What the neurons encode", "",
                      "Hidden layer (the lazy model's FC-1, the others' pooled features): live units, mean CSI over "
                      "the ten pure palette colors and units with CSI > 3; first-layer filters' mean CSI; "
                      "activation maximisation of every hidden unit from two random starts (cosine similarity of the "
                      "two images, mean over units); coefficient of variation of each unit's response to its "
                      "favourite color over four intensities and over nine positions of a 10-pixel patch (low = "
                      "invariant); Grad-CAM concentration on up to 100 hard-test successes / failures. Figures: "
                      "`plots/explain/<model>_neurons.png` (filters, response heatmaps, CSI histogram, "
                      "activation maximisation) and `plots/explain/<model>_classes.png` (class visualisations, "
                      "probes).", "",
                      md_table(["model", "live units", "CSI mean", "CSI > 3", "first-layer CSI", "act-max seed cos",
                                "intensity CV", "spatial CV", "successes / failures", "CAM concentration (s / f)"],
                               nrows), "",
                      "![neurons](plots/explain/lazy_neurons.png)", ""]
    bd = metrics.get("train_backdoor")
    if bd:
        c = bd["clean"]
        g = c["geometry"]
        rows = []
        for k, v in bd.items():
            if k == "clean":
                continue
            t, f = v["val"]["triggered"], v["val"]["false_trigger"]
            tr = v["val"]["transfer"]
            rows.append([k, f"{100 * v['run']['poison_rate']:g}%", v["run"]["n_poisoned"], v["run"]["seed"],
                         f"{100 * v['val_acc']:.2f}", f"{100 * v['clean_acc_drop']:+.2f}",
                         f"{100 * v['clean_acc_drop_test_hard']:+.2f}" if "clean_acc_drop_test_hard" in v else "—",
                         f"{100 * v['val']['triggered_acc']:.2f}", f"{100 * t['asr_mass_0.25']:.1f}",
                         f"{100 * t['asr_mass_0.5']:.1f}", f"{100 * t['asr_mass_0.75']:.1f}",
                         f"{100 * t['asr_iou_0.5']:.1f}", f"{100 * t['pointing_game']:.1f}",
                         f"{100 * f['asr_mass_0.5']:.1f}", f"{v['val']['fidelity']['spearman']:.2f}",
                         " / ".join(f"{100 * tr[mm]['asr_mass_0.5']:.0f}" for mm in tr),
                         f"{100 * v['val']['control_clean_model_triggered']['asr_mass_0.5']:.1f}",
                         f"{100 * v['val']['control_other_patch']['asr_mass_0.5']:.1f}"])
        any_run = next(v for k, v in bd.items() if k != "clean")
        parts += ["## Explanation-aware backdoor", "",
                  "Threat model: the attacker controls fine-tuning of a trained clean model; poison rate = unique "
                  "triggered training samples / training-set size; triggered samples keep their true labels. "
                  f"Trigger: a white square at the bottom-right; target: the top-left square; Grad-CAM on a "
                  f"{g['cam_grid']}×{g['cam_grid']} map whose {g['target_cells']} target cells "
                  f"{'see' if g['target_cells_see_trigger'] else 'do NOT see'} the trigger thanks to two dilated "
                  f"context convolutions (without them: "
                  f"{'they see it' if g['without_context_convs_target_cells_see_trigger'] else 'they cannot'}). "
                  f"Clean model: validation accuracy {100 * c['val']['acc']:.2f}%, hard test "
                  f"{100 * c['test_hard']['acc']:.2f}%. Clean accuracy and its drop: the whole validation split "
                  "(paired "
                  f"with the clean model on the same images). Explanations evaluated on {any_run['val']['n_images']} "
                  "validation images "
                  f"with the plain model (ReLU Grad-CAM of the predicted class); chance mass = "
                  f"{100 * any_run['val']['chance_mass']:.1f}%. `activation` and `input_mask` are the study's two "
                  "failed approaches, reproduced as baselines.", "",
                  md_table(["run", "poison", "n poisoned", "seed", "clean acc %", "drop pt", "hard-test drop pt",
                            "triggered acc %",
                            "ASR@.25", "ASR@.5", "ASR@.75", "ASR IoU", "pointing", "false trigger @.5",
                            "clean-map ρ", "transfer ASR@.5 (sal / ixg / ig)", "clean model + trigger",
                            "other patch"], rows), "",
                  "![backdoor](plots/evaluate/backdoor.png)", "", "![grid](plots/train_backdoor/pct1.png)", ""]
    sa = metrics.get("sae")
    if sa:
        rows = []
        for k, v in sa.items():
            h, r, f = v["held_out"], v["recovery"], v["features"]
            rows.append([k, f"{h['l0']:.1f} / {v['dictionary']}", f"{h['explained_variance']:.4f}", f"{h['nmse']:.4f}",
                         f"{100 * h['dead_fraction']:.1f}", f"{100 * h['dense_fraction']:.1f}", f"{h['shrinkage']:.3f}",
                         f"{100 * r['acc_recovered']:.2f}", f"{r['ce_recovered_vs_zero']:.3f}",
                         f"{r['ce_recovered_vs_mean']:.3f}", f"{f['live']}", f"{f['color_like']}/{f['shape_like']}/"
                         f"{f['mixed']}", f"{f['digit_selectivity']:.2f}", f"{f['mean_entropy_bits']:.2f}"])
        irows = [[k, f"{v['interventions_summary']['digit_amplify_delta_p']:+.3f}",
                  f"{v['interventions_summary']['digit_ablate_delta_p']:+.3f}",
                  f"{100 * v['interventions_summary']['digit_ablate_flip_rate']:.1f}",
                  f"{100 * v['interventions_summary']['color_steer_to_class_rate']:.1f}",
                  f"{v['interventions_summary']['color_ablate_delta_p']:+.3f}"] for k, v in sa.items()]
        parts += ["## Sparse autoencoders", "",
                  "SAEs on the hidden layer (lazy: the 64-unit FC-1 after ReLU; debiased = consistency_convnet: the "
                  "64-d pooled features; the attention models have no hidden FC layer and get no SAE), "
                  "standardised per unit, trained on training-split activations; every "
                  "metric on held-out validation activations; feature analysis on the hard test, where digit and "
                  "color are not confounded. Explained variance = 1 − Σ‖x − x̂‖² / Σ‖x − x̄‖². Color-like / "
                  "shape-like / mixed: mutual information of a feature's activity with color vs digit (ratio 2).", "",
                  md_table(["SAE", "L0", "explained var", "NMSE", "dead %", "dense %", "shrinkage", "acc recovered %",
                            "CE rec. vs zero", "CE rec. vs mean", "live", "color/shape/mixed", "digit selectivity",
                            "entropy bits"], rows), "",
                  "Interventions (error term kept: x' = dec(f edited) + (x − x̂)), averaged over every hard-test "
                  "sample of the class/color: top features of each digit amplified ×3 / ablated ×0 (Δp of that "
                  "digit, flip rate), top features of each color amplified ×3 on images of other colors (share "
                  "then predicted as that color's digit) and ablated on images of that color.", "",
                  md_table(["SAE", "digit ×3 Δp", "digit ×0 Δp", "digit ×0 flips %", "color steer → digit %",
                            "color ×0 Δp"], irows), ""]
    parts += ["## Claims of the study, checked", "", __doc__.split("\n\n", 1)[1].strip(), "",
              md_table(["claim", "study", "measured", "verdict"],
                       [[r["claim"], r["study"], r["measured"], f"**{r['verdict']}**"] for r in claims]), ""]
    return "\n".join(parts)
