"""scripts/compare_outs.py: a checkout's lock outputs against a reference set of MD5s."""

import importlib.util
import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("compare_outs", ROOT / "scripts/compare_outs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _lock(path: Path, outs: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stages = {f"s{i}": {"cmd": "x", "outs": [{"path": p, "md5": m}]} for i, (p, m) in enumerate(outs.items())}
    path.write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))


def test_counts_same_differing_missing_and_new_outputs_across_every_lock(tmp_path, capsys):
    mod = _script()
    _lock(tmp_path / "dvc.lock", {"a": "1", "metrics/timings/x.json": "t"})
    _lock(tmp_path / "pipelines/f/dvc.lock", {"b": "2", "c": "9", "new": "5"})
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"a": "1", "b": "2", "c": "3", "gone": "4"}))
    assert mod.main([str(tmp_path), "--ref", str(ref)]) == 1
    out = capsys.readouterr().out
    assert "same 2, differ 1, missing 1, new 1" in out and "DIFFER c" in out and "MISSING gone" in out
    ref.write_text(json.dumps({"a": "1", "b": "2"}))
    assert mod.main([str(tmp_path), "--ref", str(ref)]) == 0  # new outputs alone do not fail it
