"""The report's test-selected best epochs (never used for a claim) and the recipe differences built on them."""

from shortcutlab import claims as claims_rules
from shortcutlab.metrics import epoch_selection
from shortcutlab.report import _recipe_differences
from shortcutlab.report_models import _test_selected


def _curve(tmp_path, rows, header="seed,epoch,train_loss,test_hard_acc"):
    p = tmp_path / "curve.csv"
    p.write_text(header + "\n" + "\n".join(rows) + "\n")
    return p


def test_epoch_selection_per_seed(tmp_path):
    accs = {0: [0.1, 0.5, 0.7, 0.6, 0.8, 0.75, 0.9, 0.85, 0.88, 0.87], 1: [0.2] * 10}
    rows = [f"{s},{e + 1},1.0,{a}" for s, c in accs.items() for e, a in enumerate(c)]
    sel = epoch_selection(_curve(tmp_path, rows))
    assert sel["0"]["final"] == 0.87 and sel["0"]["best"] == 0.9 and sel["0"]["best_epoch"] == 7
    assert sel["0"]["epochs"] == 10
    assert abs(sel["0"]["rise"] - ((0.88 + 0.87) / 2 - (0.9 + 0.85) / 2)) < 1e-12
    assert sel["1"]["best_epoch"] == 1 and sel["1"]["rise"] == 0.0  # a flat curve: the first epoch, no rise


def test_epoch_selection_absent_or_without_hard_test(tmp_path):
    assert epoch_selection(tmp_path / "missing.csv") is None
    assert epoch_selection(_curve(tmp_path, ["0,1,0.5,0.9"], "seed,epoch,train_loss,val_acc")) is None


def _sel(finals, bests, rise=0.03, n=25):
    return {
        str(s): {"epochs": n, "final": f, "best": b, "best_epoch": n - 1, "rise": rise}
        for s, (f, b) in enumerate(zip(finals, bests, strict=True))
    }


def test_recipe_difference_only_where_the_claim_does_not_hold():
    epochs = {"consistency": _sel([0.82, 0.80, 0.81], [0.84, 0.82, 0.84])}
    claim = {
        "claim": "Color-consistency training reaches 91.35% on the hard test (±5 points + 2 std)",
        "study": "91.35% (its best epoch on the hard test, 23 of 25; its final epoch: 91.12%)",
        "measured": "81.00 ± 1.00% (3 seeds, 25 epochs, final epoch)",
        "verdict": claims_rules.FAILS,
    }
    (text,) = _recipe_differences({"train_debiased_epochs": epochs}, [claim])
    assert "does not hold" in text and "83.33 ± 1.15%" in text and "closes 2.33 of the 10.35 points" in text
    assert "still rising" in text
    assert _recipe_differences({"train_debiased_epochs": epochs}, [claim | {"verdict": claims_rules.HOLDS}]) == []
    short = claim | {"measured": claim["measured"] + "; the study trained 25 epochs"}
    assert _recipe_differences({"train_debiased_epochs": epochs}, [short]) == []


def test_test_selected_table_skips_short_schedules():
    epochs = {"focal": _sel([0.15, 0.10], [0.16, 0.11], n=30), "vanilla": _sel([0.9], [0.91], n=2)}
    lines = _test_selected(epochs, ["vanilla", "focal"])
    table = "\n".join(lines)
    assert "| focal | 30 | 12.50 ± 3.54% | 13.50 ± 3.54% | 29, 29 of 30 | +3.00 ± 0.00 |" in table
    assert "vanilla" not in table
