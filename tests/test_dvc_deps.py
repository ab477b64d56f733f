"""Every stage lists, as DVC deps, every library module its script imports (transitively, lazy imports
inside functions included): otherwise editing that module would leave the stage's outputs stale."""

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "shortcutlab"


def test_every_stage_depends_on_the_modules_it_imports():
    """dvc.yaml's code deps equal each script's transitive imports (scripts/write_dvc_yaml.py computes them)."""
    import importlib.util

    from shortcutlab.preset import dvc_files

    spec = importlib.util.spec_from_file_location("write_dvc_yaml", ROOT / "scripts/write_dvc_yaml.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    stages = {
        f"{path.relative_to(ROOT)}:{name}": st
        for path in dvc_files(ROOT)
        for name, st in yaml.safe_load(path.read_text())["stages"].items()
    }
    missing = {}
    for name, st in stages.items():
        body = st.get("do", st)
        script = ROOT / body["cmd"].split()[1]
        lack = set(mod.closure(script)) - set(body["deps"])
        if lack:
            missing[name] = sorted(lack)
    assert not missing, f"dvc.yaml deps lack imported modules: {missing}"


def test_dvc_yaml_code_deps_are_current():
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/write_dvc_yaml.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def _stage_outputs() -> set[str]:
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return {str(o.def_path) for st in repo.index.stages for o in st.outs}


def test_every_tracked_metrics_file_is_a_stage_output():
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files", "metrics", "REPORT.md"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    outs = _stage_outputs()
    stray = [f for f in tracked if f not in outs]
    assert not stray, f"git-tracked files no stage of dvc.yaml produces: {stray}"


def test_dvc_lock_names_only_stages_of_the_pipeline():
    """No stale lock entries (stages a preset or an old dvc.yaml had): DVC never prunes them, and it rewrites the
    whole lock after every stage, so each one costs every stage of a run time (presets prune them on apply)."""
    from shortcutlab.preset import pipeline_stages

    stale = []
    for spec, names in pipeline_stages(ROOT).items():
        lock = spec.with_suffix(".lock")
        if lock.exists():
            entries = yaml.safe_load(lock.read_text())["stages"]
            stale += [f"{lock.relative_to(ROOT)}: {n}" for n in entries if n not in names]
    assert not stale, f"dvc.lock entries of stages their dvc.yaml does not define: {stale}"


def test_every_declared_plot_is_produced_by_a_stage():
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    outs = _stage_outputs()
    for entry in spec.get("plots", []):
        pid, props = next(iter(entry.items())) if isinstance(entry, dict) else (entry, None)
        files = list((props or {}).get("y", {})) if isinstance((props or {}).get("y"), dict) else [pid]
        for f in files:
            assert any(f == o or f.startswith(o.rstrip("/") + "/") for o in outs), f"plot {f}: no stage makes it"


def test_bias_sweep_stages_follow_params():
    """One dataset stage per bias, one training stage per bias x method (and the lazy model), all from params;
    the bias plot draws one line per swept method."""
    from dvc.repo import Repo

    p = yaml.safe_load((ROOT / "params.yaml").read_text())["bias_sweep"]
    with Repo(str(ROOT)) as repo:
        names = {st.name for st in repo.index.stages}
    for b in p["biases"]:
        assert f"bias-dataset@{b}" in names and f"bias-sweep-lazy@{b}" in names
        for m in p["methods"]:
            assert f"bias-sweep@{b}-{m}" in names, (b, m)
    assert len([n for n in names if n.startswith("bias-sweep@")]) == len(p["biases"]) * len(p["methods"])
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    plot = next(e for e in spec["plots"] if isinstance(e, dict) and "bias" in next(iter(e)))
    cols = next(iter(plot.values()))["y"]["plots/evaluate/bias_sweep.csv"]
    assert cols == ["lazy", *p["methods"]], "dvc.yaml's bias plot must list bias_sweep.methods (plus lazy)"


def test_commit_code_deps_records_code_hashes_and_keeps_outputs(tmp_path):
    """scripts/commit_code_deps.py: after a code change, --check fails; a run records the code dep's new hash,
    keeps the output's recorded hash (the output need not be present), and leaves DVC with nothing to rerun."""
    import subprocess

    (tmp_path / "src").mkdir()
    (tmp_path / "stages").mkdir()
    (tmp_path / "src/a.py").write_text("X = 1\n")
    (tmp_path / "stages/s.py").write_text("open('out.txt', 'w').write('out')\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  s:\n    cmd: python stages/s.py\n    deps: [stages/s.py, src/a.py]\n    outs: [out.txt]\n"
    )
    script = [sys.executable, str(ROOT / "scripts/commit_code_deps.py"), "--root", str(tmp_path)]

    def sh(*cmd):
        return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)

    assert sh("git", "init", "-q").returncode == 0 and sh("dvc", "init", "-q").returncode == 0
    assert sh("dvc", "repro", "-q").returncode == 0
    before = yaml.safe_load((tmp_path / "dvc.lock").read_text())["stages"]["s"]
    (tmp_path / "src/a.py").write_text("X = 1  # a comment: the output cannot change\n")
    (tmp_path / "out.txt").unlink()
    stale = subprocess.run(script + ["--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and "s: src/a.py" in stale.stdout
    assert subprocess.run(script, capture_output=True, text=True).returncode == 0
    after = yaml.safe_load((tmp_path / "dvc.lock").read_text())["stages"]["s"]
    dep = {d["path"]: d["md5"] for d in after["deps"]}
    assert dep["src/a.py"] != {d["path"]: d["md5"] for d in before["deps"]}["src/a.py"]
    assert after["outs"] == before["outs"]
    assert subprocess.run(script + ["--check"], capture_output=True, text=True).returncode == 0
    assert sh("dvc", "checkout", "-q").returncode in (0, 1)  # restores out.txt from the cache
    assert "changed" not in sh("dvc", "status").stdout


def test_every_kernel_a_module_builds_is_a_dep_of_the_stages_that_import_it():
    """A module that builds a C++ kernel (``native.KERNELS / "<name>.cpp"``) lists that source in
    scripts/write_dvc_yaml.py's DATA, so editing a kernel reruns exactly the stages that run it."""
    import importlib.util
    import re

    spec = importlib.util.spec_from_file_location("write_dvc_yaml", ROOT / "scripts/write_dvc_yaml.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    built = {
        p.stem: {f"src/shortcutlab/kernels/{k}" for k in re.findall(r'KERNELS / "(\w+\.cpp)"', p.read_text())}
        for p in SRC.glob("*.py")
    }
    built = {m: ks for m, ks in built.items() if ks}
    assert built, "no module builds a kernel: the pattern no longer matches native.py's use"
    for m, ks in built.items():
        assert ks == set(mod.DATA.get(m, [])), m
    assert {f.name for f in (SRC / "kernels").glob("*.cpp")} == {Path(k).name for ks in built.values() for k in ks}
