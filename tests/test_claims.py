"""Every claim rule on hand-made metric dicts: holds, does not hold, inconclusive, not measured."""

import pytest

from shortcutlab import claims as C
from shortcutlab.claims import FAILS, HOLDS, INCONCLUSIVE, claims_table
from shortcutlab.report_models import ties


def verdict(rule, m):
    r = rule(m)
    return None if r is None else r[1]


def test_lazy_hard():
    assert verdict(C._lazy_hard, {"train_lazy": {"test_hard": {"acc": 0.15}}}) == HOLDS
    assert verdict(C._lazy_hard, {"train_lazy": {"test_hard": {"acc": 0.05}}}) == FAILS
    assert verdict(C._lazy_hard, {}) is None

    def seeds(mean, std):
        return {"train_lazy": {"n_seeds": 5, "summary": {"hard_acc": {"mean": mean, "std": std}}}}

    assert verdict(C._lazy_hard, seeds(0.16, 0.01)) == HOLDS  # 14-18% inside 12.8-22.8
    assert verdict(C._lazy_hard, seeds(0.08, 0.01)) == FAILS  # 6-10% below the band
    assert verdict(C._lazy_hard, seeds(0.12, 0.02)) == INCONCLUSIVE  # 8-16% straddles 12.8


def test_red_one():
    p = {"first_pred": 0, "pred_zero_rate": 0.9, "n": 1000, "hard_test_red_ones_pred_zero_rate": 0.8}
    p["hard_test_red_ones_n"] = 100
    assert verdict(C._red_one, {"train_lazy": {"red_one_probe": p}}) == HOLDS
    # the verdict follows the share of red 1s, not the single first image
    assert verdict(C._red_one, {"train_lazy": {"red_one_probe": p | {"first_pred": 1}}}) == HOLDS
    assert verdict(C._red_one, {"train_lazy": {"red_one_probe": p | {"pred_zero_rate": 0.1}}}) == FAILS
    # 52% of 100 images: the interval straddles one half
    assert (
        verdict(C._red_one, {"train_lazy": {"red_one_probe": p | {"pred_zero_rate": 0.52, "n": 100}}}) == INCONCLUSIVE
    )


def _db(mean, std=0.0, epochs=25, seeds=3):
    return {
        "summary": {"hard_acc": {"mean": mean, "std": std}},
        "method": {"epochs": epochs, "n_seeds": seeds},
        "seeds": {str(s): {"test_hard": {"acc": mean}} for s in range(seeds)},
    }


def test_method_claim():
    rule = C._method_claim("consistency", 80.0, 25)
    assert verdict(rule, {"train_debiased": {"consistency": _db(0.82)}}) == HOLDS
    assert verdict(rule, {"train_debiased": {"consistency": _db(0.50)}}) == FAILS
    assert verdict(rule, {"train_debiased": {"consistency": _db(0.50, epochs=1)}}) == INCONCLUSIVE
    assert verdict(rule, {"train_debiased": {"consistency": _db(0.70, std=0.03)}}) == HOLDS  # within 5 + 2 std


def _attack(t_pgd, t_fgsm, min_eps=None):
    eps = [0.01, 0.05, 0.1]
    row = lambda s, e: {"eps": e, "success": s, "success_on_clean_correct": s, "robust_acc": 1 - s}  # noqa: E731
    targeted = {
        "pgd": [row(s, e) for s, e in zip(t_pgd, eps, strict=True)],
        "fgsm": [row(s, e) for s, e in zip(t_fgsm, eps, strict=True)],
        "n_images": 100,
    }
    if min_eps is not None:
        targeted["min_eps_90_pgd"] = min_eps
    return {
        "targeted": {"test_hard": targeted},
        "untargeted": {
            "pgd": [row(s, e) for s, e in zip(t_pgd, eps, strict=True)],
            "fgsm": [row(s, e) for s, e in zip(t_fgsm, eps, strict=True)],
            "clean_acc": 0.9,
            "n_images": 100,
        },
    }


def test_pgd_beats_fgsm():
    assert verdict(C._pgd_beats_fgsm, {"attack": {"a": _attack([0.2, 0.6, 0.9], [0.1, 0.4, 0.7])}}) == HOLDS
    assert verdict(C._pgd_beats_fgsm, {"attack": {"a": _attack([0.1, 0.4, 0.7], [0.2, 0.6, 0.9])}}) == FAILS
    assert verdict(C._pgd_beats_fgsm, {"attack": {"a": _attack([0.2, 0.4, 0.7], [0.2, 0.4, 0.7])}}) == INCONCLUSIVE
    # PGD ahead on average but lower by more than a point in some cells: inconclusive
    mixed = _attack([0.2, 0.9, 0.7], [0.2, 0.3, 0.72])
    assert verdict(C._pgd_beats_fgsm, {"attack": {"a": mixed}}) == INCONCLUSIVE


def test_debiased_more_vulnerable():
    base = {
        "analysed_models": {"lazy": "data/models/lazy.pt", "jtt": "data/models/debiased/jtt"},
        "train_lazy": {"test_hard": {"acc": 0.1}},
        "train_debiased": {"jtt": _db(0.95)},
    }
    m = base | {
        "attack": {
            "lazy": _attack([0.1, 0.3, 0.5], [0.1, 0.2, 0.4]),
            "jtt": _attack([0.5, 0.95, 1.0], [0.3, 0.8, 0.9], min_eps=0.05),
        }
    }
    assert verdict(C._debiased_more_vulnerable, m) == HOLDS
    m = base | {
        "attack": {
            "lazy": _attack([0.5, 0.95, 1.0], [0.3, 0.8, 0.9], min_eps=0.05),
            "jtt": _attack([0.1, 0.3, 0.5], [0.1, 0.2, 0.4]),
        }
    }
    assert verdict(C._debiased_more_vulnerable, m) == FAILS
    m = base | {  # a smaller min eps, but at eps 0.05 the two intervals overlap (100 images each)
        "attack": {
            "lazy": _attack([0.1, 0.85, 0.89], [0.1, 0.2, 0.4]),
            "jtt": _attack([0.5, 0.9, 1.0], [0.3, 0.8, 0.9], min_eps=0.05),
        }
    }
    assert verdict(C._debiased_more_vulnerable, m) == INCONCLUSIVE


def test_beats_study_best():
    m = {"train_debiased": {"c": _db(0.985), "oracle": _db(0.99)}}
    assert verdict(C._beats_study_best, m) == HOLDS
    m = {"train_debiased": {"c": _db(0.95), "oracle": _db(0.99)}}
    assert verdict(C._beats_study_best, m) == FAILS
    m = {"train_debiased": {"c": _db(0.982, std=0.004), "oracle": _db(0.99, std=0.001)}}  # 97.4-99.0% straddles 98
    assert verdict(C._beats_study_best, m) == INCONCLUSIVE


def test_ties_are_overlapping_intervals():
    db = {"a": _db(0.95, 0.01), "b": _db(0.93, 0.011), "c": _db(0.80, 0.01), "d": _db(0.79, seeds=1)}
    assert ties(db, ["a", "b", "c", "d"]) == ["a ~ b"]


def _bd(asr, false, val_drop, hard_drop, n=1000, rate=0.01):
    return {
        "run": {"poison_rate": rate, "explanation_method": 1},
        "val": {"n_images": n, "triggered": {"asr": asr}, "false_trigger": {"asr": false}},
        "clean_model_val_acc": 0.99,
        "val_acc": 0.99 - val_drop,
        "n_val": 10000,
        "clean_model_test_hard_acc": 0.94,
        "test_hard_acc": 0.94 - hard_drop,
        "n_test_hard": 10000,
    }


def test_backdoor_1pct_uses_the_intervals():
    hold = {"clean": {}, "a": _bd(1.0, 0.0, 0.001, 0.001), "b": _bd(0.999, 0.002, 0.0, 0.0)}
    assert verdict(C._backdoor_1pct, {"train_backdoor": hold}) == HOLDS
    fail = {"clean": {}, "a": _bd(1.0, 0.0, 0.001, 0.08)}  # hard test drops 8 points: not stealthy
    assert verdict(C._backdoor_1pct, {"train_backdoor": fail}) == FAILS
    close = {"clean": {}, "a": _bd(1.0, 0.0, 0.001, 0.009)}  # 0.9 pt, interval straddles 1 pt
    assert verdict(C._backdoor_1pct, {"train_backdoor": close}) == INCONCLUSIVE
    assert verdict(C._backdoor_1pct, {"train_backdoor": {"clean": {}}}) is None


def _trig(clean_only, triggered_only, n=10000):
    return {"discordant": {"clean_only": clean_only, "triggered_only": triggered_only}, "n": n}


def test_backdoor_1pct_judges_the_accuracy_lost_to_the_trigger():
    run = _bd(1.0, 0.0, 0.001, 0.001)
    kept = run | {"triggered_whole": {"val": _trig(10, 8), "test_hard": _trig(60, 40)}}  # 0.2 pt: stealthy
    assert verdict(C._backdoor_1pct, {"train_backdoor": {"a": kept}}) == HOLDS
    lost = run | {"triggered_whole": {"val": _trig(10, 8), "test_hard": _trig(1100, 100)}}  # 10 pt on the hard test
    assert verdict(C._backdoor_1pct, {"train_backdoor": {"a": lost}}) == FAILS
    edge = run | {"triggered_whole": {"val": _trig(10, 8), "test_hard": _trig(250, 160)}}  # 0.9 pt, straddles 1
    assert verdict(C._backdoor_1pct, {"train_backdoor": {"a": edge}}) == INCONCLUSIVE
    # both hard-test quantities are judged: a model that loses 8 points without the trigger fails however small
    # the trigger's own cost is
    worse = _bd(1.0, 0.0, 0.001, 0.08) | {"triggered_whole": kept["triggered_whole"]}
    assert verdict(C._backdoor_1pct, {"train_backdoor": {"a": worse}}) == FAILS
    text = C._backdoor_1pct({"train_backdoor": {"a": kept}})[0]
    assert "drop hard" in text and "trigger costs hard" in text


def test_neurons():
    n = {
        "csi_gt_3": 14,
        "alive": 50,
        "csi_mean": 1.0,
        "csi_p75": 1.5,
        "poly_mean": 0.5,
        "poly_bands": {"monosemantic_lt_0.3": 1, "weakly_monosemantic_lt_0.7": 40, "polysemantic_ge_0.7": 9},
    }
    assert verdict(C._neurons, {"explain": {"lazy": {"neurons": n}}}) == HOLDS
    assert verdict(C._neurons, {"explain": {"lazy": {"neurons": n | {"csi_gt_3": 0}}}}) == FAILS


def test_sae_rules():
    h = {"explained_variance": 0.995, "l0_fraction": 0.7}
    m = {"sae": {"lazy-l1": {"held_out": h}, "lazy-topk": {"held_out": h}}}
    assert verdict(C._sae_recon, m) == HOLDS
    m["sae"]["lazy-l1"]["held_out"] = h | {"l0_fraction": 0.1}
    assert verdict(C._sae_recon, m) == FAILS
    f = {"digit_selectivity": 0.5, "mean_entropy_bits": 1.0, "color_like": 1, "shape_like": 9}
    for b, expect in ((0.7, HOLDS), (0.3, FAILS), (0.52, INCONCLUSIVE)):
        m = {"sae": {"lazy-topk": {"features": f}, "debiased-topk": {"features": f | {"digit_selectivity": b}}}}
        assert verdict(C._sae_selectivity, m) == expect


@pytest.mark.parametrize("ratio,expect", [(0.7, HOLDS), (0.2, FAILS)])
def test_attention_diffuse(ratio, expect):
    m = {
        "explain": {"attention": {"test_hard": {"attention": {"concentration_ratio": ratio, "foreground_mass": 0.3}}}},
        "train_attention": {"attention": {"test_hard": {"acc": 0.01}}},
    }
    assert verdict(C._attention_diffuse, m) == expect


def test_claims_table_marks_unmeasured_claims():
    rows = claims_table({})
    assert rows and all(r["verdict"] == "not measured" for r in rows)


def test_backdoor_drop_interval_is_paired_when_recorded():
    from shortcutlab.metrics import drop_interval

    v = _bd(1.0, 0.0, 0.009, 0.009)  # 0.9 point drops on 10,000 images
    unpaired = drop_interval(v, "test_hard")
    v["test_hard_discordant"] = {"clean_only": 110, "backdoored_only": 20}  # the same 0.9 points, paired
    paired = drop_interval(v, "test_hard")
    assert paired[1] - paired[0] < unpaired[1] - unpaired[0]
    assert paired[0] < 0.009 < paired[1] and paired[1] < 0.012 < unpaired[1]


def test_report_gives_the_trigger_cost_of_the_clean_model_and_the_sweep(tmp_path):
    from shortcutlab.report import plot_tables
    from shortcutlab.report_backdoor import _clean_trigger_cost

    trig = {
        "val": _trig(10, 8) | {"clean_acc": 0.99, "triggered_acc": 0.9898},
        "test_hard": _trig(165, 87) | {"clean_acc": 0.9412, "triggered_acc": 0.9334},
    }
    text = _clean_trigger_cost({"triggered_whole": trig})
    assert "the trigger alone costs the clean model" in text and "hard test +0.78 [" in text
    assert _clean_trigger_cost({}) == ""  # not measured: nothing said, never a made-up number
    run = _bd(1.0, 0.0, 0.001, 0.001) | {
        "triggered_whole": trig,
        "clean_acc_drop": 0.001,
        "clean_acc_drop_test_hard": 0.001,
    }
    plot_tables(str(tmp_path), {"train_backdoor": {"clean": {}, "a": run}})
    rows = (tmp_path / "backdoor_sweep.csv").read_text().splitlines()
    head, row = rows[0].split(","), dict(zip(rows[0].split(","), rows[1].split(","), strict=True))
    assert {"val_trigger_cost", "test_hard_trigger_cost"} <= set(head)
    assert float(row["test_hard_trigger_cost"]) == pytest.approx(0.0078, abs=1e-6)
