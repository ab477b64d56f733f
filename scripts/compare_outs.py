"""Compare a checkout's outputs, as its dvc.lock files record them, with a reference set of output MD5s (by default
results/rerun_amx_xeon/outs_md5_session23.json: session 23's from-scratch run of the faithful default on an AMX
Xeon). A speed change that claims "the same bytes" is checked this way after the stages it reaches are forced (or
after a complete run): every output's hash in the locks against the reference, timing files left out.

    python scripts/compare_outs.py [ROOT] [--ref results/rerun_amx_xeon/outs_md5_session23.json]

Prints the counts (same, differ, missing, new) and each differing, missing or new output; exits 1 if any differs
or is missing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parents[1]


def lock_outs(root: Path) -> dict[str, str | None]:
    outs = {}
    for f in [root / "dvc.lock", *sorted((root / "pipelines").glob("*/dvc.lock"))]:
        if f.exists():
            for stage in (yaml.safe_load(f.read_text()) or {}).get("stages", {}).values():
                for o in stage.get("outs", []):
                    outs[o["path"]] = o.get("md5")
    return outs


def compare(outs: dict, ref: dict) -> dict[str, list[str]]:
    return {
        "same": [p for p in ref if outs.get(p) == ref[p]],
        "differ": [p for p in ref if p in outs and outs[p] != ref[p]],
        "missing": [p for p in ref if p not in outs],
        "new": [p for p in outs if p not in ref and "timings" not in p],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", nargs="?", default=".", help="the checkout whose locks are read")
    ap.add_argument("--ref", default=str(HERE / "results/rerun_amx_xeon/outs_md5_session23.json"))
    args = ap.parse_args(argv)
    ref = json.loads(Path(args.ref).read_text())
    res = compare(lock_outs(Path(args.root)), ref)
    print(", ".join(f"{k} {len(v)}" for k, v in res.items()) + f" (reference: {len(ref)} outputs)")
    for kind in ("differ", "missing", "new"):
        for p in res[kind]:
            print(kind.upper(), p)
    return 1 if res["differ"] or res["missing"] else 0


if __name__ == "__main__":
    sys.exit(main())
