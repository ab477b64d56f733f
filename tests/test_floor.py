"""benchmarks/floor.py: the arithmetic floor counts every computing stage of the pipeline once, each analysed
model at its own architecture, and reads a `dvc repro` log under DVC's stage names."""

import importlib.util
from pathlib import Path

import pytest

from shortcutlab.params import load

ROOT = Path(__file__).resolve().parents[1]
NO_FLOPS = ("check-params", "fetch-mnist", "make-dataset", "bias-dataset@", "sae@", "evaluate", "lff-")


@pytest.fixture(scope="module")
def floor():
    spec = importlib.util.spec_from_file_location("floor", ROOT / "benchmarks" / "floor.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def flops(floor):
    p = load(ROOT / "params.yaml")
    train, _ = floor.training_flops(p)
    return train | floor.backdoor_flops(p) | floor.analysis_flops(p)


def test_every_computing_stage_counted_once(floor, flops):
    """The FLOP table's stages are exactly the pipeline's stages that train or analyse a model."""
    import yaml

    from shortcutlab.preset import lock_files

    lock = {name for path in lock_files(ROOT) for name in yaml.safe_load(path.read_text())["stages"]}
    computing = {s for s in lock if not s.startswith(NO_FLOPS)}
    assert set(flops) == computing
    assert all(v > 0 for v in flops.values())


def test_analysed_models_at_their_own_architecture(floor, flops):
    """The width-1.0 shape CNN (88 MFLOP) costs far more to attack than the ConvNet, the two-conv net less."""
    assert flops["attack@shape_cnn"] > 5 * flops["attack@vanilla"]
    assert flops["attack@consistency"] < flops["attack@vanilla"]
    assert flops["explain@vit"] > flops["explain@attention"]
    assert flops["attack@lazy"] < flops["attack@consistency"]
    with pytest.raises(SystemExit, match="architecture unknown"):
        floor.analysed_flops("somewhere/else.pt", load(ROOT / "params.yaml"))


def test_log_read_under_dvc_stage_names(floor, tmp_path):
    log = tmp_path / "repro.log"
    log.write_text(
        "train-lazy: done in 90.0s\nbias-sweep@0.98-lazy: done in 10.5s\ntrain-attention@vit_frozen: done in 5.0s\n"
        "bias-sweep@0.95-lff: done in 7.0s\ntrain-debiased@focal: done in 300.0s\n"
    )
    later = tmp_path / "later.log"
    later.write_text("train-debiased@focal: done in 250.0s\n")
    stages = {"train-lazy", "bias-sweep-lazy@0.98", "train-vit-frozen", "train-debiased@focal"}
    per_stage = floor.measured([str(log), str(later)], stages)
    assert per_stage == {
        "train-lazy": 90.0,
        "bias-sweep-lazy@0.98": 10.5,
        "train-vit-frozen": 5.0,
        "train-debiased@focal": 250.0,  # the later log wins; bias-sweep@0.95 is no longer a stage
    }
    assert floor.by_group(per_stage) == {
        "train-lazy": 90.0,
        "bias-sweep": 10.5,
        "train-attention": 5.0,
        "train-debiased": 250.0,
    }


def test_bandwidth_floor_counts_the_same_stages(floor, flops):
    """Every stage with FLOPs also has bytes to move. The small models move more bytes per FLOP than the
    width-1.0 shape CNN (which is why they are bandwidth-bound)."""
    moved = floor.stage_bytes(load(ROOT / "params.yaml"))
    assert set(moved) == set(flops)
    assert all(v > 0 for v in moved.values())

    def intensity(stage):  # FLOP per byte
        return flops[stage] / moved[stage]

    assert intensity("train-debiased@shape_cnn") > 4 * intensity("train-debiased@focal")
    assert intensity("train-debiased@shape_cnn") > 4 * intensity("train-lazy")
