import difflib
from pathlib import Path

import pytest
import yaml

from shortcutlab.params import ParamsError, load
from shortcutlab.preset import apply, prune_lock, prune_locks

ROOT = Path(__file__).resolve().parents[1]


PRESETS = sorted(p.stem for p in (ROOT / "presets").glob("*.yaml"))


@pytest.mark.parametrize("name", PRESETS)
def test_presets_apply_and_validate(tmp_path, name):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    merged = apply(name, tmp_path / "params.yaml", ROOT / "presets")
    p = load(tmp_path / "params.yaml")
    preset = yaml.safe_load((ROOT / "presets" / f"{name}.yaml").read_text())
    preset.pop("replace", None)
    for section, values in preset.items():
        for key in values:
            assert key in merged[section]
    assert p["train_lazy"].lr == load(ROOT / "params.yaml")["train_lazy"].lr


def test_unknown_preset(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    with pytest.raises(ParamsError, match="no such preset"):
        apply("nope", tmp_path / "params.yaml", ROOT / "presets")


def _comments(text: str) -> list[str]:
    return [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]


@pytest.mark.parametrize("name", PRESETS)
def test_preset_keeps_every_comment_and_every_untouched_key(tmp_path, name):
    original = (ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(original)
    apply(name, tmp_path / "params.yaml", ROOT / "presets")
    after = (tmp_path / "params.yaml").read_text()
    preset = yaml.safe_load((ROOT / "presets" / f"{name}.yaml").read_text())
    replace = set(preset.pop("replace", []))
    before, merged = yaml.safe_load(original), yaml.safe_load(after)
    if not replace:
        assert _comments(after) == _comments(original)  # every comment, in order
    else:  # entries deleted by `replace` take their own comments along; every other comment stays, in order
        orig = iter(_comments(original))
        assert all(c in orig for c in _comments(after))  # a subsequence: only deleted entries' comments go
        lost = len(_comments(original)) - len(_comments(after))
        assert lost <= sum(len(before[k.split(".")[0]]) for k in replace), lost
        for key in replace:
            sec, sub = key.split(".", 1) if "." in key else (key, None)
            got = merged[sec] if sub is None else merged[sec][sub]
            assert set(got) == set(preset[sec] if sub is None else preset[sec][sub]), key

    def untouched(a, b, over, path=""):
        for k, v in a.items():
            if f"{path}{k}" in replace:
                continue
            if isinstance(over, dict) and k in over:
                if isinstance(v, dict) and isinstance(over[k], dict):
                    untouched(v, b[k], over[k], f"{path}{k}.")
                continue
            assert b[k] == v, f"{path}{k} changed"

    untouched(before, merged, preset)

    def leaves(d):
        return sum(leaves(v) if isinstance(v, dict) else 1 for v in d.values())

    if not replace:  # only the lines holding a changed value differ: nothing else is re-wrapped or re-flowed
        removed = [ln for ln in difflib.ndiff(original.splitlines(), after.splitlines()) if ln.startswith("- ")]
        assert len(removed) <= leaves(preset), removed


LOCK = """schema: '2.0'
stages:
  keep-a:
    cmd: python stages/a.py
    deps:
    - path: stages/a.py
      hash: md5
      md5: 0123456789abcdef0123456789abcdef
      size: 10
    outs:
    - path: data/a
      hash: md5
      md5: fedcba9876543210fedcba9876543210
      size: 3
  attack@gone:
    cmd: python stages/attack.py gone
    params:
      params.yaml:
        attack.steps: 40
  keep-b:
    cmd: python stages/b.py
"""


def test_prune_lock_drops_only_stages_that_no_longer_exist(tmp_path):
    lock = tmp_path / "dvc.lock"
    lock.write_text(LOCK)
    assert prune_lock({"keep-a", "keep-b"}, lock) == ["attack@gone"]
    text = lock.read_text()
    assert "attack@gone" not in text and "attack.steps" not in text
    gone = LOCK[LOCK.index("  attack@gone:") : LOCK.index("  keep-b:")]
    assert text == LOCK.replace(gone, "")  # every other line as DVC wrote it, in order
    before = lock.stat().st_mtime_ns
    assert prune_lock({"keep-a", "keep-b"}, lock) == [] and lock.stat().st_mtime_ns == before  # nothing to do
    assert prune_lock({"x"}, tmp_path / "absent.lock") == []
    bad = tmp_path / "bad.lock"
    bad.write_text("- a list, not a lock\n")
    with pytest.raises(ParamsError, match="bad.lock"):
        prune_lock({"x"}, bad)


def test_prune_locks_covers_every_family_file(tmp_path):
    """The root lock and each pipelines/<family>/dvc.lock lose the entries their own dvc.yaml no longer defines
    (a family whose list a preset empties loses all of them); names come back as DVC addresses them."""
    from conftest import run

    run(["dvc", "init", "--no-scm", "-q"], tmp_path)
    (tmp_path / "params.yaml").write_text("models: {a: 1}\n")
    (tmp_path / "dvc.yaml").write_text("stages:\n  base:\n    cmd: echo base\n")
    fam = tmp_path / "pipelines" / "attack"
    fam.mkdir(parents=True)
    (fam / "dvc.yaml").write_text(
        "vars:\n  - ../../params.yaml\nstages:\n  attack:\n    foreach: ${models}\n    do:\n"
        "      wdir: ../..\n      cmd: echo ${key}\n"
    )
    lock = "schema: '2.0'\nstages:\n  {}:\n    cmd: echo {}\n"
    (tmp_path / "dvc.lock").write_text(lock.format("base", "base") + "  gone:\n    cmd: echo gone\n")
    (fam / "dvc.lock").write_text(lock.format("attack@a", "a") + "  attack@b:\n    cmd: echo b\n")
    assert sorted(prune_locks(tmp_path)) == ["gone", "pipelines/attack/dvc.yaml:attack@b"]
    assert list(yaml.safe_load((fam / "dvc.lock").read_text())["stages"]) == ["attack@a"]
    assert list(yaml.safe_load((tmp_path / "dvc.lock").read_text())["stages"]) == ["base"]
    (tmp_path / "params.yaml").write_text("models: {}\n")
    assert prune_locks(tmp_path) == ["pipelines/attack/dvc.yaml:attack@a"]
    assert yaml.safe_load((fam / "dvc.lock").read_text())["stages"] == {}


def _applied(tmp_path, names: list[str]) -> dict:
    tmp_path.mkdir()
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    for name in names:
        apply(name, tmp_path / "params.yaml", ROOT / "presets")
    return yaml.safe_load((tmp_path / "params.yaml").read_text())


def test_default_params_are_the_faithful_study_and_short_goes_back(tmp_path):
    """Issue 18: params.yaml is the faithful study (the preset changes nothing); `short` then `faithful` returns
    to it; `quick` gives the same params whether it starts from the default or from `short`."""
    default = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert _applied(tmp_path / "a", ["faithful"]) == default
    assert _applied(tmp_path / "b", ["short", "faithful"]) == default
    assert _applied(tmp_path / "c", ["short"]) != default
    assert _applied(tmp_path / "d", ["quick"]) == _applied(tmp_path / "e", ["short", "quick"])
