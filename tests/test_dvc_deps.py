"""Every stage lists, as DVC deps, every library module its script imports (transitively, lazy imports
inside functions included): otherwise editing that module would leave the stage's outputs stale."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "shortcutlab"


def _direct(path: Path) -> set[str]:
    text = path.read_text()
    mods = set(re.findall(r"from (?:shortcutlab)?\.?(\w+) import", text))
    for group in re.findall(r"from (?:shortcutlab|\.) import ([\w, ]+)", text):
        mods |= {m.strip() for m in group.split(",")}
    return {m for m in mods if (SRC / f"{m}.py").exists()}


def _closure(script: Path) -> set[str]:
    seen, todo = set(), list(_direct(script))
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += list(_direct(SRC / f"{m}.py"))
    return {f"src/shortcutlab/{m}.py" for m in seen}


def test_every_stage_depends_on_the_modules_it_imports():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    missing = {}
    for name, st in stages.items():
        body = st.get("do", st)
        script = ROOT / body["cmd"].split()[1]
        lack = _closure(script) - set(body["deps"])
        if lack:
            missing[name] = sorted(lack)
    assert not missing, f"dvc.yaml deps lack imported modules: {missing}"
