"""Regenerate the per-stage code deps of every dvc.yaml (the root's and pipelines/*/dvc.yaml) from what each stage
script imports (transitively), so a stage reruns exactly when code it runs changes. `python
scripts/write_dvc_yaml.py --check` exits 1 if one is stale (tests/test_dvc_deps.py checks the same). Everything
else in those files is hand-written: this script only rewrites the lines between `# deps: <script>` markers."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from shortcutlab.preset import dvc_files

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "shortcutlab"
# files a module reads at run time (not imports): a change to them must rerun its stages too
DATA = {
    "fused": [
        "src/shortcutlab/kernels/bn_relu.cpp",
        "src/shortcutlab/kernels/relu_avg_pool.cpp",
        "src/shortcutlab/kernels/relu_pool.cpp",
    ],
    "augment": ["src/shortcutlab/kernels/color_jitter.cpp"],
    "sae": ["src/shortcutlab/kernels/relu_topk.cpp"],
}


def direct(path: Path) -> set[str]:
    out = set()
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom) and (n.level == 1 or (n.module or "").startswith("shortcutlab")):
            mod = (n.module or "").removeprefix("shortcutlab").lstrip(".")
            out |= {mod.split(".")[0]} if mod else {a.name for a in n.names}
    return {m for m in out if (SRC / f"{m}.py").exists()}


def closure(script: Path) -> list[str]:
    seen, todo = set(), list(direct(script))
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += list(direct(SRC / f"{m}.py"))
    return [f"src/shortcutlab/{m}.py" for m in sorted(seen)] + sorted(f for m in seen for f in DATA.get(m, []))


def render(text: str) -> str:
    def repl(m: re.Match) -> str:
        indent, script = m.group(1), m.group(2)
        lines = [f"{indent}- {script}"] + [f"{indent}- {d}" for d in closure(ROOT / script)]
        return f"{indent}# deps: {script}\n" + "\n".join(lines) + "\n"

    return re.sub(r"( +)# deps: (\S+)\n(?:\1- src/shortcutlab/\S+\n|\1- stages/\S+\n)*", repl, text)


if __name__ == "__main__":
    stale = []
    for path in dvc_files(ROOT):
        old = path.read_text()
        new = render(old)
        if new != old:
            stale.append(str(path.relative_to(ROOT)))
            if "--check" not in sys.argv:
                path.write_text(new)
    if stale and "--check" in sys.argv:
        sys.exit(f"{', '.join(stale)}: code deps are stale: run python scripts/write_dvc_yaml.py")
