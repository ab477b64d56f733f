"""Record the current hashes of the code files every stage depends on in its dvc.lock, keeping every output's
recorded hash: what `dvc commit` does, for code deps only, and without needing the outputs in the workspace.

Use it only after a code change that provably leaves every output unchanged, byte for byte (a refactor, a
comment, a faster kernel with the same bits), and say how that was checked in the commit. It is how main keeps
its lock (made on another machine, whose outputs are not here) consistent with the code without a rerun that
could not reproduce those bytes on this machine anyway. Session 22 used it for the fused ReLU + max-pool
kernel (shortcutlab/fused.py): tests/test_fused.py and the quick preset's every output before and after
(README, "Time budget") show the same bytes. Deps outside src/ and stages/ (data, models) keep their recorded
hashes; a code dep that a stage gained is added, one it lost is dropped (DVC's own serialisation, sorted).

    python scripts/commit_code_deps.py [--check] [--root DIR]   # --check: exit 1 if a lock's code hashes are stale
"""

from __future__ import annotations

import sys
from pathlib import Path

from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo

ROOT = Path(__file__).resolve().parents[1]
CODE = ("src/", "stages/")


def code_deps(stage, root: Path):
    for dep in stage.deps:
        rel = Path(dep.fs_path).relative_to(root).as_posix()
        if not isinstance(dep, ParamsDependency) and rel.startswith(CODE):
            yield rel, dep


def main(check: bool, root: Path = ROOT) -> int:
    root = Path(root).resolve()
    repo = Repo(str(root))
    stale = []
    with repo.lock:
        for stage in repo.index.stages:
            if not getattr(stage, "cmd", None) or stage.is_import:
                continue
            changed = []
            for rel, dep in code_deps(stage, root):
                old = dep.hash_info.value if dep.hash_info else None
                dep.save()
                if dep.hash_info.value != old:
                    changed.append(rel)
            if changed:
                stale.append(f"{stage.addressing}: {', '.join(changed)}")
                if not check:
                    stage.dump(update_pipeline=False)
    for line in stale:
        print(("stale " if check else "recorded ") + line)
    return 1 if (check and stale) else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main("--check" in args, Path(args[args.index("--root") + 1]) if "--root" in args else ROOT))
