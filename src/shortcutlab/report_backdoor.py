"""The report's section on the explanation-aware backdoor: attack and stealth, specificity controls, transfer
to other attribution methods and persistence, every rate with its 95% interval."""

from __future__ import annotations

from .markdown import ci, md_table
from .metrics import drop_interval, triggered_drop_interval


def drop_ci(v: dict, split: str) -> str:
    """A run's accuracy drop on ``split`` in points with its paired 95% interval (metrics.drop_interval)."""
    lo, hi = drop_interval(v, split)
    key = "val_acc" if split == "val" else "test_hard_acc"
    return f"{100 * (v[f'clean_model_{split}_acc'] - v[key]):+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]"


def trigger_cost(v: dict, split: str) -> str:
    """Accuracy the trigger costs the backdoored model on the whole ``split`` (clean minus triggered copies of the
    same images) in points with its paired 95% interval; "—" where the run did not record it."""
    d = triggered_drop_interval(v, split)
    if d is None:
        return "—"
    t = v["triggered_whole"][split]
    return f"{100 * (t['clean_acc'] - t['triggered_acc']):+.2f} [{100 * d[0]:+.2f}, {100 * d[1]:+.2f}]"


def _backdoor_tables(bd: dict) -> tuple[list, list, list]:
    main, spec, transfer = [], [], []
    for k, v in bd.items():
        if k == "clean":
            continue
        e, n = v["val"], v["val"]["n_images"]
        t, f = e["triggered"], e["false_trigger"]
        main.append(
            [
                k,
                f"{100 * v['run']['poison_rate']:g}%",
                v["run"]["n_poisoned"],
                v["run"]["seed"],
                ci(v["val_acc"], v.get("n_val"), 2),
                drop_ci(v, "val"),
                drop_ci(v, "test_hard"),
                trigger_cost(v, "val"),
                trigger_cost(v, "test_hard"),
                ci(t["asr"], n),
                f"{ci(t['asr_by_tau'][0]['rate'], n)} / {ci(t['asr_by_tau'][-1]['rate'], n)}",
                ci(t["asr_iou"], n),
                ci(t["pointing_game"], n),
                ci(f["asr"], n),
                f"{e['fidelity']['spearman']:.2f}",
            ]
        )
        ctl = e.get("controls", {})
        spec.append(
            [
                k,
                *(ci(ctl[c]["asr"], n) for c in ctl),
                ci(e["control_clean_model_triggered"]["asr"], n),
            ]
        )
        d = v.get("defence")
        transfer.append(
            [
                k,
                *(ci(r["asr"], n) for r in e["transfer"].values()),
                ci(d["val_acc"], v.get("n_val"), 2) if d else "—",
                ci(d["asr"], n) if d else "—",
            ]
        )
    return main, spec, transfer


BACKDOOR_TEXT = (
    "Threat model: the attacker controls fine-tuning of a trained clean model; poison rate = unique "
    "triggered training samples / training-set size; triggered samples keep their true labels; every batch "
    "holds the same number of triggered copies resampled from the poisoned subset, so runs compare rates, not "
    "step counts. Loss: w_ce·CE (0 by default) + distillation to the frozen clean model (on clean, negative and "
    "recolored inputs; on triggered inputs, to the clean model's output for the same image without the trigger, "
    "so the trigger must not change the prediction) + triggered CE + −log target share of the triggered "
    "Grad-CAM + the clean model's maps kept on clean inputs "
    "and on negatives (random patches at the trigger's place, the trigger elsewhere: random draws, not the "
    "evaluation controls below). "
)


def _clean_trigger_cost(c: dict) -> str:
    """The trigger's occlusion cost on the clean model (no backdoor), with its paired interval, if measured."""
    tw = c.get("triggered_whole")
    if not tw:
        return ""
    parts = [f"{name} {trigger_cost(c, s)}" for s, name in (("val", "validation"), ("test_hard", "hard test"))]
    return "; the trigger alone costs the clean model " + ", ".join(parts) + " pt (clean minus triggered copies)"


def _backdoor_intro(bd: dict) -> str:
    """The section's opening paragraph: threat model, loss, geometry, the clean model and how things are measured."""
    c, g = bd["clean"], bd["clean"]["geometry"]
    any_run = next(v for k, v in bd.items() if k != "clean")
    sees = "see" if g["target_cells_see_trigger"] else "do NOT see"
    plain = "they see it" if g["without_context_convs_target_cells_see_trigger"] else "they cannot"
    return (
        BACKDOOR_TEXT + f"Trigger: a white square at the bottom-right; target: the top-left square; Grad-CAM on a "
        f"{g['cam_grid']}×{g['cam_grid']} map whose {g['target_cells']} target cells {sees} the trigger thanks to "
        f"two dilated context convolutions (without them: {plain}). Clean model: validation "
        f"{100 * c['val']['acc']:.2f}%, hard test {100 * c['test_hard']['acc']:.2f}%"
        + _clean_trigger_cost(c)
        + ". Accuracy drops: the whole "
        "validation split and hard test against the clean model on the same images; what the trigger costs: the "
        "backdoored model on every image of the split, clean against triggered (both paired, from the discordant "
        "images). Explanations: "
        f"{any_run['val']['n_images']} validation images, ReLU Grad-CAM of the predicted class; chance mass = "
        f"{100 * any_run['val']['chance_mass']:.1f}%. Brackets: 95% intervals (Wilson for rates; paired normal "
        "intervals for drops). `activation` and `input_mask` are the study's two failed approaches (baselines)."
    )


def section_backdoor(metrics: dict, claims: list[dict]) -> list[str]:
    bd = metrics.get("train_backdoor")
    if not bd or len(bd) < 2:
        return []
    main, spec, transfer = _backdoor_tables(bd)
    any_run = next(v for k, v in bd.items() if k != "clean")
    return [
        "## Explanation-aware backdoor",
        "",
        _backdoor_intro(bd),
        "",
        md_table(
            [
                "run",
                "poison",
                "n poisoned",
                "seed",
                "val acc %",
                "val drop pt",
                "hard-test drop pt",
                "trigger costs, val pt",
                "trigger costs, hard test pt",
                "ASR@.5 %",
                "ASR@.25 / .75",
                "ASR IoU",
                "pointing",
                "false trigger @.5 %",
                "clean-map ρ",
            ],
            main,
        ),
        "",
        "Specificity: ASR@.5 % of the backdoored model on control inputs (must stay low) and of the clean model on "
        "triggered inputs:",
        "",
        md_table(["run", *any_run["val"].get("controls", {}), "clean model + trigger"], spec),
        "",
        "Transfer (ASR@.5 % of other attribution methods on triggered inputs; Grad-CAM++ and Layer-CAM on the "
        "same layer) and persistence (a defender fine-tunes the backdoored model on clean training data):",
        "",
        md_table(["run", *any_run["val"]["transfer"], "after defence: val acc %", "after defence: ASR@.5 %"], transfer),
        "",
        "![backdoor](plots/evaluate/backdoor.png)",
        "",
        "![grid](plots/train_backdoor/pct1.png)",
        "",
    ]
