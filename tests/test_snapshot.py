"""The literature preset's committed snapshot: copied byte for byte with provenance, read by evaluate when the
preset is off, and rendered with its per-method verdicts."""

import hashlib
import json
import subprocess
from types import SimpleNamespace

import pytest
import yaml

from shortcutlab import snapshot
from shortcutlab.report_bias import section_literature


def _result(aligned, method, scaling, mean, std, n=3):
    ms = {"mean": mean, "std": std}
    return {
        "aligned": aligned,
        "method": method,
        "scaling": scaling,
        "epochs": 100,
        "n_seeds": n,
        "summary": {"unbiased_acc": ms, "conflicting_acc": ms, "aligned_acc": ms, "acc": ms},
        "seeds": {},
    }


def _fake_clone(root, finished, stale=()):
    """A clone whose dvc.lock lists lff-train stages; ``stale`` ones were edited after they ran."""
    lock = {"schema": "2.0", "stages": {}}
    for a, m, s in finished:
        rel = f"metrics/bias_sweep/lff_protocol/{a}/{m}-{s}.json"
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(_result(a, m, s, 0.5, 0.01)))
        md5 = hashlib.md5(p.read_bytes()).hexdigest()
        lock["stages"][f"lff-train@{a}-{m}-{s}"] = {
            "cmd": "x",
            "deps": [{"path": "src/shortcutlab/literature.py", "md5": "abc"}],
            "params": {"params.yaml": {"literature.seeds": [0, 1, 2]}},
            "outs": [{"path": rel, "md5": md5}],
        }
        if (a, m, s) in stale:
            p.write_text("{}")
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))
    lit = {"aligned": [0.99, 0.995], "methods": {"vanilla": {}, "lff": {}}, "scaling": ["published"]}
    (root / "params.yaml").write_text(yaml.safe_dump({"literature": lit}))
    subprocess.run(["git", "init", "-q", str(root)], check=True)


def test_take_copies_finished_stages_with_provenance(tmp_path):
    clone, dest = tmp_path / "clone", tmp_path / "snap"
    clone.mkdir()
    done = [(0.99, "vanilla", "published"), (0.99, "lff", "published"), (0.995, "lff", "published")]
    _fake_clone(clone, done, stale=[(0.995, "lff", "published")])
    prov = snapshot.take(clone, dest)
    assert prov["stages_finished"] == 2 and prov["stages_expected"] == 4  # the edited one is not finished
    assert sorted(snapshot.snapshot_files(dest)) == ["0.99/lff-published", "0.99/vanilla-published"]
    src = clone / "metrics/bias_sweep/lff_protocol/0.99/lff-published.json"
    assert (dest / "0.99/lff-published.json").read_bytes() == src.read_bytes()
    assert prov["stages"]["lff-train@0.99-lff-published"]["deps"] == {"src/shortcutlab/literature.py": "abc"}
    assert snapshot.differences(clone, dest) == []
    src.write_text("{}")  # a rerun that does not reproduce a file
    assert [d.split(":")[0] for d in snapshot.differences(clone, dest)] == [str(src)]


def test_take_refuses_a_clone_without_the_preset(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"literature": {"aligned": []}}))
    (tmp_path / "dvc.lock").write_text("stages: {}\n")
    with pytest.raises(SystemExit, match="literature.aligned is empty"):
        snapshot.take(tmp_path, tmp_path / "snap")


def test_evaluate_reads_the_pipeline_when_the_preset_is_on_else_the_snapshot():
    on = SimpleNamespace(aligned=[0.99], methods={"lff": {}}, scaling=["clean"])
    assert snapshot.literature_files(on) == {"0.99/lff-clean": snapshot.PIPELINE / "0.99" / "lff-clean.json"}
    assert snapshot.provenance(on) is None
    off = SimpleNamespace(aligned=[], methods={"lff": {}}, scaling=["clean"])
    assert snapshot.literature_files(off) == snapshot.snapshot_files()


def _section(results, prov=None):
    lit = {f"{r['aligned']}/{r['method']}-{r['scaling']}": r for r in results}
    return "\n".join(section_literature({"literature": lit, "literature_provenance": prov}, []))


def test_section_verdicts_ordering_and_magnitude():
    text = _section(
        [
            _result(0.99, "vanilla", "published", 0.40, 0.01),
            _result(0.99, "lff", "published", 0.683, 0.01),  # the reference rerun's 68.2: within
            _result(0.99, "jtt", "published", 0.41, 0.02),  # overlaps vanilla: a tie
            _result(0.99, "rebias", "published", 0.30, 0.01),
        ]
    )
    verdict = {m: [row for row in text.splitlines() if row.startswith(f"| {m} ")][-1] for m in ("lff", "jtt", "rebias")}
    assert "above (+28.3)" in verdict["lff"] and "within our spread" in verdict["lff"]
    assert "tie (+1.0)" in verdict["jtt"]
    assert "below (-10.0)" in verdict["rebias"]
    assert "published table not found" in text and "From this pipeline run" in text


def test_section_names_the_snapshot_and_a_miss():
    prov = {"commit": "0123456789abcdef", "stages_finished": 2, "stages_expected": 40}
    text = _section(
        [_result(0.99, "vanilla", "published", 0.40, 0.01), _result(0.99, "lff", "published", 0.50, 0.01)], prov
    )
    assert "commit `012345678`" in text and "2 of 40" in text
    assert "misses by -18.2 points" in text


def test_section_reports_what_jtt_identification_caught():
    jtt = _result(0.99, "jtt", "published", 0.41, 0.02)
    jtt["seeds"] = {
        "0": {"error_set_size": 2900, "error_set_conflicting_share": 0.2},
        "1": {"error_set_size": 3100, "error_set_conflicting_share": 0.1},
    }
    text = _section([_result(0.99, "vanilla", "published", 0.40, 0.01), jtt])
    row = [r for r in text.splitlines() if r.startswith("| jtt ")][-1]
    assert "99%: 3,000 images, 15% conflicting" in row
    jtt["seeds"] = {}  # a result without the statistics (older runs): the plain text, nothing made up
    assert "error set" not in _section([_result(0.99, "vanilla", "published", 0.40, 0.01), jtt])
