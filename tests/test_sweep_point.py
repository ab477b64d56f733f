"""The bias sweep's point at dataset.bias is read from train-lazy / train-debiased, in the sweep's own format."""

import json
import random

import pytest
from conftest import PARAMS

from shortcutlab import evaluation, sweep_point
from shortcutlab.params import ParamsError, validate

METHODS = PARAMS["bias_sweep"]["methods"]


def params(**sections):
    p = json.loads(json.dumps(PARAMS))
    for name, kw in sections.items():
        p[name] |= kw
    return validate(p)


def record(rng):
    """One seed's evaluate_model-like record (the keys the sweep's summary reads, and more)."""
    split = lambda: {"acc": rng.random(), "color_following": rng.random(), "worst_class_acc": rng.random()}  # noqa: E731
    return {"val": split(), "test_hard": split() | {"per_class_acc": {"0": 0.5}}, "test_easy": split()}


def runs(seeds_lazy, seeds_debiased, rng):
    lazy = {str(s): record(rng) | {"best_epoch": {"epoch": 3, "acc": rng.random()}} for s in seeds_lazy}
    train_lazy = {
        "seeds": {
            s: {k: r[k]["acc"] for k in ("val", "test_hard", "test_easy")}
            | {"best_epoch": r["best_epoch"]}
            | {f"test_hard_{k}": r["test_hard"][k] for k in ("worst_class_acc", "color_following")}
            for s, r in lazy.items()
        }
    }
    debiased = {m: {"method": {"epochs": 2}, "seeds": {str(s): record(rng) for s in seeds_debiased}} for m in METHODS}
    return lazy, train_lazy, debiased


def test_point_is_the_sweeps_record_on_the_sweeps_seeds():
    rng = random.Random(1)
    p = params(bias_sweep={"biases": [0.99], "seeds": [0, 2]})
    lazy, train_lazy, debiased = runs([0, 1, 2, 3], [0, 1, 2], rng)
    out = sweep_point.point(p, train_lazy, debiased)
    bias = p["dataset"].bias
    assert list(out) == [f"{bias}/{m}" for m in ["lazy", *METHODS]]
    sub = {s: lazy[s] for s in ("0", "2")}
    want = evaluation.seed_summary(sub) | {
        "best_epoch_hard_acc": evaluation.mean_std(r["best_epoch"]["acc"] for r in sub.values())
    }
    got = out[f"{bias}/lazy"]
    assert json.dumps(got["summary"]) == json.dumps(want)
    assert got["seeds"] == {s: {k: lazy[s][k]["acc"] for k in ("val", "test_hard", "test_easy")} for s in sub}
    assert got["epochs"] == p["train_lazy"].epochs and got["n_seeds"] == 2 and got["bias"] == bias
    lff = out[f"{bias}/lff"]
    assert lff["summary"] == evaluation.seed_summary({s: debiased["lff"]["seeds"][s] for s in ("0", "2")})
    assert lff["source"] == "metrics/train_debiased/lff.json" and lff["epochs"] == 2


def test_no_point_when_the_sweep_trains_dataset_bias_or_is_off():
    rng = random.Random(2)
    _, train_lazy, debiased = runs([0, 1, 2], [0, 1, 2], rng)
    listed = params(bias_sweep={"biases": [PARAMS["dataset"]["bias"], 0.99]})
    assert sweep_point.point(listed, train_lazy, debiased) == {}


@pytest.mark.parametrize(
    ("sections", "key"),
    [
        ({"train_debiased": {"seeds": [0]}}, "train_debiased.seeds"),
        ({"train_lazy": {"seeds": [0, 1]}}, "train_lazy.seeds"),
    ],
)
def test_uncovered_sweep_seeds_are_refused_with_the_keys_named(sections, key):
    p = params(bias_sweep={"biases": [0.99], "seeds": [0, 1, 2]}, **sections)
    with pytest.raises(ParamsError, match=rf"bias_sweep.seeds: seeds \[.*\] are not in {key}.*bias_sweep.biases"):
        sweep_point.check(p)
    sweep_point.check(params(bias_sweep={"biases": [0.99, PARAMS["dataset"]["bias"]], "seeds": [0, 1, 2]}, **sections))


def test_method_seeds_override_is_checked_under_its_own_key():
    methods = json.loads(json.dumps(PARAMS["train_debiased"]["methods"]))
    methods["lff"]["seeds"] = [5]
    p = params(bias_sweep={"biases": [0.99], "seeds": [0]}, train_debiased={"methods": methods})
    with pytest.raises(ParamsError, match=r"train_debiased.methods.lff.seeds \[5\]"):
        sweep_point.check(p)
