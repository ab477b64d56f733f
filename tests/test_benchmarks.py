"""The benchmarks still run against today's library (a smoke run at tiny sizes: nothing is timed or asserted
about speed here; speed lives in the benchmarks' own output)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_models_runs_every_family(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run(
        [sys.executable, "benchmarks/bench_models.py", "--batch", "8", "--steps", "1", "--json", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    rows = json.loads(out.read_text())["rows"]
    families = " ".join(r["family"] for r in rows)
    for family in ("lazy", "shape_cnn", "ViT", "MLP"):
        assert family in families
    assert all(r["bf16_images_per_s"] > 0 and r["fp32_images_per_s"] > 0 for r in rows)
