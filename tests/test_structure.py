"""The code's shape, checked: registries agree with the schema, functions and modules stay readable."""

import ast
from pathlib import Path

from shortcutlab.backdoor import OBJECTIVES
from shortcutlab.debias import METHODS
from shortcutlab.params import BACKDOOR_METHODS, METHOD_CONFIGS

ROOT = Path(__file__).resolve().parents[1]


def test_registries_agree_with_the_schema():
    assert set(METHODS) == set(METHOD_CONFIGS)  # every configurable method trains, and only those
    assert set(OBJECTIVES) == set(BACKDOOR_METHODS)


def test_no_long_functions_or_modules():
    long_fns, long_mods = [], []
    for p in [*(ROOT / "src").rglob("*.py"), *(ROOT / "stages").glob("*.py")]:
        text = p.read_text()
        if len(text.splitlines()) > 400:
            long_mods.append(str(p.relative_to(ROOT)))
        for n in ast.walk(ast.parse(text)):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.end_lineno - n.lineno + 1 > 60:
                long_fns.append(f"{p.relative_to(ROOT)}:{n.name}")
    assert not long_fns and not long_mods, (long_fns, long_mods)
