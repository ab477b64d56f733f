"""scripts/literature_workers.py: which stages it runs, in what order, with which arguments."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("literature_workers", ROOT / "scripts/literature_workers.py")
lw = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lw)


def test_parse_gives_the_stage_scripts_arguments():
    assert lw.parse("lff-train@0.995-lff-clean") == ("0.995", "lff", "clean")
    assert lw.parse("lff-train@0.95-my-method-published") == ("0.95", "my-method", "published")
    for bad in ("lff-dataset@0.99", "lff-train@0.99-lff", "train-lazy"):
        with pytest.raises(ValueError, match="not an lff-train stage"):
            lw.parse(bad)


def test_plan_keeps_only_lff_train_stages_longest_first():
    changed = [
        "check-params",
        "lff-train@0.99-vanilla-clean",
        "lff-train@0.99-rebias-clean",
        "lff-dataset@0.99",
        "lff-train@0.98-lff-clean",
        "lff-train@0.95-rebias-clean",
    ]
    assert lw.plan(changed) == [
        "lff-train@0.99-rebias-clean",
        "lff-train@0.95-rebias-clean",
        "lff-train@0.98-lff-clean",
        "lff-train@0.99-vanilla-clean",
    ]


def test_bad_worker_count_is_refused(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts/literature_workers.py"), "--workers", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "--workers must be at least 1" in out.stderr
