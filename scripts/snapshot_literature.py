"""Keep the `literature` preset's results in git (results/literature/) so the default report shows them.

    python -m shortcutlab.preset literature && dvc repro          # in a clone: hours on a CPU
    python scripts/snapshot_literature.py /path/to/clone          # copy its finished stages + provenance
    python scripts/snapshot_literature.py /path/to/clone --check  # does a rerun reproduce the snapshot?

Then `dvc repro evaluate` here puts the protocol table into REPORT.md (its section names the commit).
"""

import argparse
import sys
from pathlib import Path

from shortcutlab.snapshot import SNAPSHOT, differences, take


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clone", type=Path, help="a repository clone where the literature preset ran")
    ap.add_argument("--check", action="store_true", help="compare the clone's files with the snapshot instead")
    a = ap.parse_args()
    if a.check:
        diff = differences(a.clone)
        print("\n".join(diff) or f"{a.clone}: every file of {SNAPSHOT} reproduced byte for byte")
        sys.exit(1 if diff else 0)
    prov = take(a.clone)
    print(
        f"{SNAPSHOT}: {prov['stages_finished']} of {prov['stages_expected']} lff-train stages, commit {prov['commit']}"
    )


if __name__ == "__main__":
    main()
