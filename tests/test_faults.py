"""Fault injection: every way a careless user or a hostile collaborator can feed the pipeline something
corrupt or nonsensical ends in a clear error that names the file or params key, with nothing wrong published.
The README's "Integrity" table lists these cases and their outcomes."""

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT, lock_entries, restore, run

from shortcutlab.errors import ArtifactError
from shortcutlab.io import load_state, read_npz, save_state, write_npz
from shortcutlab.metrics import QualityError, check_not_chance, wilson
from shortcutlab.params import ParamsError, load


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def flip_tensor_bytes(path: Path, n: int = 4) -> None:
    """Flip ``n`` bytes in the middle of the largest tensor record of a torch checkpoint (a zip, stored)."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        payload = z.read(info)
    raw = bytearray(path.read_bytes())
    at = raw.find(payload) + len(payload) // 2
    assert at > len(payload) // 2
    for i in range(n):
        raw[at + i] ^= 0xFF
    path.write_bytes(bytes(raw))


# ------------------------------------------------------------------------------------------ unit level
def test_bit_flipped_checkpoint_is_refused_naming_the_file(tmp_path):
    p = tmp_path / "m.pt"
    save_state(p, {"arch": "lazy", "arch_kwargs": {}, "state_dict": {"w": torch.arange(4096.0)}, "meta": {}})
    assert torch.equal(load_state(p)["state_dict"]["w"], torch.arange(4096.0))
    flip_tensor_bytes(p)
    with pytest.raises(ArtifactError, match=r"m\.pt: corrupt.*digest.*dvc checkout"):
        load_state(p)


def test_truncated_checkpoint_and_dataset_name_the_file(tmp_path):
    p = tmp_path / "m.pt"
    save_state(p, {"arch": "lazy", "arch_kwargs": {}, "state_dict": {"w": torch.ones(64)}, "meta": {}})
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(ArtifactError, match=r"m\.pt: corrupt or unreadable.*dvc checkout .*m\.pt.*dvc pull"):
        load_state(p)
    q = tmp_path / "train.npz"
    write_npz(q, x=np.arange(1000, dtype=np.uint8))
    q.write_bytes(q.read_bytes()[:100])
    with pytest.raises(ArtifactError, match=r"train\.npz: corrupt or unreadable.*dvc repro"):
        read_npz(q)


def test_npz_whose_arrays_changed_behind_its_digest_is_refused(tmp_path):
    q = tmp_path / "a.npz"
    write_npz(q, x=np.zeros(10, dtype=np.uint8))
    arrays = dict(np.load(q, allow_pickle=False))
    arrays["x"][3] = 1  # re-zipped with a valid CRC, but not the data that was written
    np.savez(q, **arrays)
    with pytest.raises(ArtifactError, match="do not match the digest"):
        read_npz(q)
    np.savez(q, x=np.zeros(10, dtype=np.uint8))  # a foreign file without a digest
    with pytest.raises(ArtifactError, match="no 'sha256' digest"):
        read_npz(q)


def test_pickled_checkpoint_runs_no_code(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "x": Path("/")}, p)  # a non-tensor global: weights_only refuses it
    with pytest.raises(ArtifactError, match="evil.pt: not a weights-only checkpoint"):
        load_state(p)


def test_params_duplicate_key_and_missing_section(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(text.replace("  epochs: 10\n", "  epochs: 10\n  epochs: 11\n", 1))
    with pytest.raises(ParamsError, match="duplicate key 'epochs'"):
        load(tmp_path / "params.yaml")
    p = yaml.safe_load(text)
    del p["train_lazy"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    with pytest.raises(ParamsError, match="train_lazy: missing section"):
        load(tmp_path / "params.yaml")


def test_every_key_is_required():
    """The schema holds no second copy of params.yaml's values: deleting any key is an error naming it."""
    base = yaml.safe_load((ROOT / "params.yaml").read_text())

    def leaves(d, path=()):
        for k, v in d.items():
            if isinstance(v, dict) and v and not (path and path[-1] in ("runs", "methods", "analysed_models")):
                yield from leaves(v, (*path, k))
            yield (*path, k)

    from shortcutlab.params import validate

    checked = 0
    for path in leaves(base):
        if path[0] == "analysed_models" and len(path) > 1:
            continue  # entries of a free mapping, not schema keys
        p = yaml.safe_load((ROOT / "params.yaml").read_text())
        d = p
        for k in path[:-1]:
            d = d[k]
        del d[path[-1]]
        key = ".".join(path)
        if path[-1] in ("runs", "methods") or (len(path) >= 3 and path[-2] in ("runs", "methods")):
            if len(path) >= 3:
                continue  # deleting one run/method is legal: it just is not run
        with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
            validate(p)
        checked += 1
    assert checked > 100


def test_chance_is_refused():
    lo, hi = wilson(0.5, 100)
    assert lo < 0.5 < hi and round(hi - lo, 2) == 0.19
    check_not_chance("m.json", "lazy", 0.95, 10000)
    with pytest.raises(QualityError, match="m.json: lazy validation accuracy 0.0968.*at chance"):
        check_not_chance("m.json", "lazy", 0.0968, 10000)


# ------------------------------------------------------------------------------------------ end to end
pytest_slow = pytest.mark.slow


@pytest.fixture
def repo(tiny_repo):
    yield tiny_repo
    restore(tiny_repo)


def set_params(repo: Path, text_edit) -> None:
    (repo / "params.yaml").write_text(text_edit((repo / "params.yaml").read_text()))


@pytest_slow
def test_diverged_model_is_not_published(repo):
    def locked():  # every stage's lock entry but check-params' (the params are valid: it passes and records them)
        return {k: v for k, v in lock_entries(repo).items() if k != "check-params"}

    lock, report = locked(), (repo / "REPORT.md").read_text()
    p = yaml.safe_load((repo / "params.yaml").read_text())
    p["train_lazy"]["lr"] = 1000.0
    p["train_lazy"]["gate"] = yaml.safe_load((ROOT / "params.yaml").read_text())["train_lazy"]["gate"]
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    proc = run(["dvc", "repro"], repo, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "train-lazy seed 0: quality gate failed" in out and "train_lazy.gate." in out, out[-2000:]
    assert locked() == lock and (repo / "REPORT.md").read_text() == report


@pytest_slow
def test_params_typo_leaves_the_workspace_as_it_was(repo):
    before = {p: md5(repo / p) for p in ("data/models/lazy.pt", "metrics/train_lazy.json", "REPORT.md")}
    set_params(repo, lambda t: t.replace("  epochs: 1\n", "  epoch: 1\n", 1))
    proc = run(["dvc", "repro"], repo, check=False)
    assert proc.returncode != 0 and "unknown key" in proc.stdout + proc.stderr
    assert {p: md5(repo / p) for p in before} == before  # check-params failed first: nothing was removed


@pytest_slow
def test_bit_flipped_checkpoint_stops_the_stage(repo):
    flip_tensor_bytes(repo / "data/models/lazy.pt")
    proc = subprocess.run(
        [sys.executable, "stages/attack.py", "lazy", "data/models/lazy.pt"], cwd=repo, capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr
    assert "data/models/lazy.pt: corrupt" in proc.stderr and "dvc checkout" in proc.stderr
    proc = run(["dvc", "repro", "-s", "pipelines/attack/dvc.yaml:attack@lazy"], repo, check=False)
    assert proc.returncode != 0  # dvc sees a changed dep, reruns the stage, and the stage refuses the file


@pytest_slow
def test_truncated_dataset_names_the_file(repo):
    f = repo / "data/dataset/test_hard.npz"
    f.chmod(0o644)
    f.write_bytes(f.read_bytes()[:1000])
    proc = subprocess.run(
        [sys.executable, "stages/attack.py", "lazy", "data/models/lazy.pt"], cwd=repo, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "data/dataset/test_hard.npz: corrupt or unreadable" in proc.stderr


@pytest_slow
def test_direct_stage_run_validates_like_dvc(repo):
    set_params(repo, lambda t: t.replace("  epochs: 1\n", "  epochs: 1\n  epochs: 2\n", 1))
    proc = subprocess.run([sys.executable, "stages/train_lazy.py"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 2 and "duplicate key 'epochs'" in proc.stderr


@pytest_slow
def test_corrupted_remote_object_is_refused(repo, tmp_path):
    assert "verify = true" in (repo / ".dvc/config").read_text()  # the committed remote verifies downloads
    run(["dvc", "push"], repo)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    md5sum = next(o["md5"] for o in lock["stages"]["train-lazy"]["outs"] if o["path"] == "data/models/lazy.pt")
    remote = Path(run(["dvc", "remote", "list"], repo).stdout.split()[1])
    obj = remote / "files" / "md5" / md5sum[:2] / md5sum[2:]
    raw = bytearray(obj.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # same size, one bit flipped
    obj.chmod(0o644)
    obj.write_bytes(bytes(raw))
    obj.chmod(0o444)
    clone = tmp_path / "b"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    shutil.copy(repo / ".dvc/config", clone / ".dvc/config")
    proc = run(["dvc", "pull", "data/models/lazy.pt"], clone, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert not (clone / "data/models/lazy.pt").exists()  # the corrupted object never reaches the workspace
    assert "data/models/lazy.pt" in out, out[-2000:]
    assert json.loads(run(["dvc", "status", "--json"], clone).stdout)  # and dvc status says it is not there
    # DVC's own message ("Checkout failed ... Is your cache up to date?") names the file but not the cause:
    proc = run([sys.executable, str(ROOT / "scripts/check_remote.py")], clone, check=False)
    assert proc.returncode == 1 and "data/models/lazy.pt: CORRUPT on the remote" in proc.stderr, proc.stderr
    assert "dvc push data/models/lazy.pt" in proc.stderr
