"""End to end: a copy of the repo, tiny params, the real `dvc repro`, then caching behaviour."""

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from conftest import TINY, restore, run

pytestmark = pytest.mark.slow


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def repo(tiny_repo):
    yield tiny_repo
    restore(tiny_repo)


def declared_outputs(repo: Path) -> list[Path]:
    """Every output of every stage as DVC expands them (foreach and matrix stages included)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as r:
        return [repo / str(o.def_path) for st in r.index.stages for o in st.outs]


def test_every_declared_output_exists(repo):
    missing = [str(p) for p in declared_outputs(repo) if not p.exists()]
    assert not missing, missing


def test_metrics_are_real_numbers(repo):
    m = json.loads((repo / "metrics/train_lazy.json").read_text())
    for split in ("train", "val", "test_easy", "test_hard"):
        assert 0.0 <= m[split]["acc"] <= 1.0
    ds = json.loads((repo / "metrics/make_dataset.json").read_text())
    assert ds["train"]["n"] == TINY["dataset"]["n_train"] and ds["test_hard"]["dominant_rate"] == 0.0
    s = json.loads((repo / "metrics/summary.json").read_text())
    assert "lazy" in s and "claims" in s and "debiased" in s
    assert "Claims of the study" in (repo / "REPORT.md").read_text()


def test_second_repro_is_a_noop(repo):
    out = run(["dvc", "repro"], repo).stdout
    assert "Running stage" not in out, out


def test_make_dataset_is_bit_identical_when_rerun(repo):
    before = {p.name: md5(p) for p in sorted((repo / "data/dataset").glob("*.npz"))}
    run(["dvc", "repro", "-f", "-s", "make-dataset"], repo)
    after = {p.name: md5(p) for p in sorted((repo / "data/dataset").glob("*.npz"))}
    assert before == after and len(before) == 4


def test_changing_train_lazy_reruns_only_downstream(repo):
    p = yaml.safe_load((repo / "params.yaml").read_text())
    p["train_lazy"]["epochs"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    status = run(["dvc", "status", "--json"], repo).stdout
    changed = set(json.loads(status))
    assert "train-lazy" in changed and "make-dataset" not in changed and "fetch-mnist" not in changed
    out = run(["dvc", "repro"], repo).stdout
    assert "Running stage 'train-lazy'" in out
    assert "Running stage 'make-dataset'" not in out and "Running stage 'fetch-mnist'" not in out


def test_bad_params_fail_before_any_work(repo):
    p = yaml.safe_load((repo / "params.yaml").read_text())
    p["dataset"]["bias"] = 1.5
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    proc = run(["dvc", "repro"], repo, check=False)
    assert proc.returncode != 0
    assert "dataset.bias" in proc.stdout + proc.stderr
