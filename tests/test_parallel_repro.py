"""scripts/parallel_repro.py: which stages it runs, in what order, when each may start, its refusals, and on a
small DVC pipeline, that it records exactly what `dvc repro` records."""

import importlib.util
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import run

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("parallel_repro", ROOT / "scripts/parallel_repro.py")
pr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pr)

# a -> b -> d, a -> c -> d, e alone: upstream maps each stage to what it depends on
UPSTREAM = {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}, "e": set()}


def test_plan_runs_changed_stages_and_everything_downstream_critical_path_first():
    assert pr.plan(UPSTREAM, {"a", "e"}) == ["a", "b", "c", "d", "e"]  # a heads a 3-stage chain; then by name
    assert pr.plan(UPSTREAM, {"c"}) == ["c", "d"]  # b unchanged and not downstream of c
    assert pr.plan(UPSTREAM, set()) == []


def test_plan_never_runs_a_frozen_stage():
    assert pr.plan(UPSTREAM, {"a"}, frozen=frozenset({"c"})) == ["a", "b", "d"]


def test_scheduler_starts_a_stage_only_after_its_upstream_is_recorded():
    sched = pr.Scheduler(pr.plan(UPSTREAM, {"a", "e"}), UPSTREAM)
    assert sched.take() == "a"
    assert sched.take() == "e"  # b and c wait on a
    got = []
    t = threading.Thread(target=lambda: got.append(sched.take()))
    t.start()
    t.join(0.2)
    assert t.is_alive() and not got  # nothing is ready until a is recorded
    sched.finish("a", ok=True)
    t.join(5)
    assert got == ["b"]
    sched.finish("e", ok=True)
    assert sched.take() == "c"
    sched.finish("b", ok=True)
    sched.finish("c", ok=True)
    assert sched.take() == "d"
    sched.finish("d", ok=True)
    assert sched.take() is None


def test_scheduler_starts_nothing_after_a_failure():
    sched = pr.Scheduler(["a", "e", "b"], UPSTREAM)
    assert sched.take() == "a"
    sched.finish("a", ok=False)
    assert sched.take() is None and sched.failed == ["a"]


@pytest.mark.parametrize("threads", [0, 2])
def test_refuses_unless_compute_threads_is_one(tmp_path, threads):
    (tmp_path / "params.yaml").write_text(f"compute:\n  threads: {threads}\n")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/parallel_repro.py")], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert f"compute.threads is {threads}" in proc.stderr and "compute.threads: 1" in proc.stderr


TOY = """
stages:
  a:
    cmd: python -c "import yaml; open('a.txt', 'w').write(str(yaml.safe_load(open('params.yaml'))['x']))"
    params: [x, y]
    outs: [a.txt]
  b:
    cmd: python -c "open('b.txt', 'w').write(open('a.txt').read() * 2)"
    deps: [a.txt]
    outs: [b.txt]
  c:
    cmd: python -c "import os; os.makedirs('c', exist_ok=True); open('c/c.txt', 'w').write(open('a.txt').read() + 'c')"
    deps: [a.txt]
    outs: [c]
"""
# d lives in a family file, as the pipeline's families do (pipelines/<family>/dvc.yaml, run from the root)
FAMILY = """
stages:
  d:
    wdir: ../..
    cmd: python -c "open('d.txt', 'w').write(open('b.txt').read() + open('c/c.txt').read())"
    deps: [b.txt, c]
    outs: [d.txt]
"""


def _locks(root: Path) -> tuple[str, str]:
    return (root / "dvc.lock").read_text(), (root / "pipelines/fam/dvc.lock").read_text()


@pytest.mark.slow
def test_runner_records_what_dvc_repro_records(tmp_path):
    """A four-stage DVC pipeline in two dvc.yaml files: the runner (two at a time) runs what changed and its
    downstream, removes a stage's old outputs first, runs each stage in its wdir, and leaves both locks as
    `dvc repro -f` leaves them, with `dvc status` clean."""
    run(["git", "init", "-q"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path)
    (tmp_path / "params.yaml").write_text("compute:\n  threads: 1\nx: 3\ny: 0\n")
    (tmp_path / "dvc.yaml").write_text(TOY)
    (tmp_path / "pipelines/fam").mkdir(parents=True)
    (tmp_path / "pipelines/fam/dvc.yaml").write_text(FAMILY)
    script = [sys.executable, str(ROOT / "scripts/parallel_repro.py"), "--workers", "2"]
    assert "4 stage(s) to run" in run(script, tmp_path).stdout
    assert (tmp_path / "d.txt").read_text() == "333c"
    (tmp_path / "params.yaml").write_text("compute:\n  threads: 1\nx: 5\ny: 0\n")
    (tmp_path / "c" / "stale.txt").write_text("from an earlier run")
    assert "4 stage(s) to run" in run(script, tmp_path).stdout
    assert not (tmp_path / "c" / "stale.txt").exists()
    assert "up to date" in run(["dvc", "status"], tmp_path).stdout
    by_runner = _locks(tmp_path)
    assert (tmp_path / "d.txt").read_text() == "555c"
    run(["dvc", "repro", "-f"], tmp_path)
    assert _locks(tmp_path) == by_runner
    assert "0 stage(s) to run" in run(script, tmp_path).stdout
    # y changes what a reads but not what it writes: a reruns, and its downstream is up to date, as in dvc repro
    (tmp_path / "params.yaml").write_text("compute:\n  threads: 1\nx: 5\ny: 1\n")
    out = run(script, tmp_path).stdout
    assert "a: done" in out and all(f"{s}: up to date, not run" in out for s in "bcd")
    assert "up to date" in run(["dvc", "status"], tmp_path).stdout


def test_patterns_match_a_family_stage_by_address_or_bare_name():
    stage = "pipelines/attack/dvc.yaml:attack@lazy"
    assert pr.matches(stage, ["attack@*"]) and pr.matches(stage, ["pipelines/attack/*"])
    assert pr.matches("train-lazy", ["train-*"])
    assert not pr.matches(stage, ["explain@*"]) and not pr.matches(stage, ["lazy"])


def test_plan_with_patterns_runs_only_the_matching_changed_stages():
    assert pr.plan(UPSTREAM, {"a", "b", "c", "d", "e"}, only=["b", "d"]) == ["b", "d"]
    assert pr.plan(UPSTREAM, {"a", "b"}, only=["[bc]"]) == ["b"]  # c matches but has not changed
    assert pr.plan(UPSTREAM, {"a"}, only=["e*"]) == []


@pytest.mark.slow
def test_a_failing_stage_stops_the_run_and_names_itself(tmp_path):
    run(["git", "init", "-q"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path)
    (tmp_path / "params.yaml").write_text("compute:\n  threads: 1\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  bad:\n    cmd: python -c \"raise SystemExit('boom')\"\n    outs: [bad.txt]\n"
        "  after:\n    cmd: python -c \"open('after.txt', 'w').write('x')\"\n    deps: [bad.txt]\n"
        "    outs: [after.txt]\n"
    )
    proc = run([sys.executable, str(ROOT / "scripts/parallel_repro.py"), "--workers", "2"], tmp_path, check=False)
    assert proc.returncode == 1
    assert "bad: FAILED (exit 1" in proc.stdout and "1 stage(s) failed: bad" in proc.stderr
    assert "boom" in (tmp_path / ".dvc/tmp/parallel_repro/bad.log").read_text()
    assert not (tmp_path / "after.txt").exists()  # never started
