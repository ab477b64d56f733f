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


@pytest.mark.slow
def test_runs_and_records_the_changed_lff_train_stages(tmp_path):
    """On a small pipeline with the preset's stage names: the datasets first (dvc repro), then the lff-train
    stages by the shared workers, recorded so that `dvc status` is clean; other stages are left alone."""
    from conftest import run

    run(["git", "init", "-q"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  lff-dataset:\n    foreach: ['0.99']\n    do:\n"
        "      cmd: python -c \"open('d${item}.txt', 'w').write('d')\"\n      outs:\n        - d${item}.txt\n"
        "  lff-train:\n    foreach: ['0.99-vanilla-clean', '0.99-lff-clean']\n    do:\n"
        "      cmd: python -c \"open('t${item}.txt', 'w').write(open('d0.99.txt').read() + '${item}')\"\n"
        "      deps: [d0.99.txt]\n      outs:\n        - t${item}.txt\n"
        "  other:\n    cmd: python -c \"open('o.txt', 'w').write('o')\"\n    outs: [o.txt]\n"
    )
    out = run([sys.executable, str(ROOT / "scripts/literature_workers.py"), "--workers", "2"], tmp_path).stdout
    assert "2 lff-train stages to run" in out and "lff-train@0.99-lff-clean: done" in out
    assert (tmp_path / "t0.99-vanilla-clean.txt").read_text() == "d0.99-vanilla-clean"
    assert not (tmp_path / "o.txt").exists()
    status = run(["dvc", "status"], tmp_path).stdout
    assert "lff-train" not in status and "other" in status
