"""The `literature` preset's results, kept in git so the default report can show them.

The LfF protocol takes hours on a CPU, so the default pipeline does not run it (``literature.aligned: []``).
``python scripts/snapshot_literature.py <clone>`` copies a clone's preset run (its
``metrics/bias_sweep/lff_protocol/`` files, byte for byte) into :data:`SNAPSHOT`, with ``provenance.json``:
the clone's commit, its ``literature`` params and the ``dvc.lock`` entry of every stage copied, so anyone can
tell which code and params produced each file and rerun them (``--check`` compares a rerun with the
snapshot). ``evaluate`` reads the pipeline's own files when the preset is on and the snapshot when it is off.
"""

from __future__ import annotations

from pathlib import Path

from .io import read_json

SNAPSHOT = Path("results/literature")
PIPELINE = Path("metrics/bias_sweep/lff_protocol")


def pipeline_files(lit) -> dict[str, Path]:
    """``<aligned>/<method>-<scaling>`` -> the file stage lff-train@<aligned>-<method>-<scaling> writes."""
    return {
        f"{a}/{k}-{s}": PIPELINE / str(a) / f"{k}-{s}.json"
        for a in lit.aligned
        for k in lit.methods
        for s in lit.scaling
    }


def snapshot_files(root: Path = SNAPSHOT) -> dict[str, Path]:
    """The snapshot's result files, keyed like :func:`pipeline_files` (dataset statistics left out)."""
    return {f"{p.parent.name}/{p.stem}": p for p in sorted(root.glob("*/*.json")) if p.stem != "dataset"}


def literature_files(lit) -> dict[str, Path]:
    """What evaluate reads for the protocol: this run's files when the preset is on, else the snapshot's."""
    return pipeline_files(lit) if lit.aligned else snapshot_files()


def provenance(lit) -> dict | None:
    """Where the protocol numbers come from: None for this run, the snapshot's provenance otherwise."""
    if lit.aligned or not (SNAPSHOT / "provenance.json").exists():
        return None
    return read_json(SNAPSHOT / "provenance.json")


def _md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()


def _finished(clone: Path) -> dict[str, dict]:
    """The lff stages of a clone's dvc.lock whose every output on disk still has its locked md5."""
    import yaml

    lock = yaml.safe_load((clone / "dvc.lock").read_text()) or {}
    done = {}
    for name, st in (lock.get("stages") or {}).items():
        if name.startswith("lff-train@") and all(
            (clone / o["path"]).is_file() and _md5(clone / o["path"]) == o.get("md5") for o in st.get("outs", [])
        ):
            done[name] = st
    return done


def take(clone: Path, dest: Path = SNAPSHOT) -> dict:
    """Copy every finished protocol metrics file of ``clone`` into ``dest`` (byte for byte) and write
    ``provenance.json``; refuses a clone whose preset is off. Returns the provenance."""
    import subprocess

    import yaml

    from .io import write_bytes, write_json

    lit = (yaml.safe_load((clone / "params.yaml").read_text()) or {}).get("literature") or {}
    if not lit.get("aligned"):
        raise SystemExit(f"{clone}/params.yaml: literature.aligned is empty (apply the `literature` preset first)")
    done = _finished(clone)
    for st in done.values():
        for o in st.get("outs", []):
            if o["path"].endswith(".json"):
                write_bytes(dest / Path(o["path"]).relative_to(PIPELINE), (clone / o["path"]).read_bytes())
    commit = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    expected = len(lit["aligned"]) * len(lit["methods"]) * len(lit["scaling"])
    prov = {
        "commit": commit.strip(),
        "params": {"literature": lit},
        "stages_finished": len(done),
        "stages_expected": expected,
        "stages": {
            k: {"params": v.get("params", {}), "deps": {d["path"]: d.get("md5") for d in v["deps"]}}
            for k, v in sorted(done.items())
        },
    }
    write_json(dest / "provenance.json", prov)
    return prov


def differences(clone: Path, dest: Path = SNAPSHOT) -> list[str]:
    """Snapshot files that a clone's rerun does not reproduce byte for byte (or did not produce)."""
    out = []
    for p in sorted(dest.glob("*/*.json")):
        q = clone / PIPELINE / p.relative_to(dest)
        if not q.is_file():
            out.append(f"{q}: missing")
        elif q.read_bytes() != p.read_bytes():
            out.append(f"{q}: differs from {p}")
    return out
