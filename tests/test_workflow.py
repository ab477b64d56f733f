"""Collaboration workflow on a real (tiny) pipeline: experiments, metrics/params diff between branches,
local and SSH remotes with run-cache sharing, corruption detection."""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import restore, run

pytestmark = pytest.mark.slow


@pytest.fixture
def repo(tiny_repo):
    yield tiny_repo
    restore(tiny_repo)


def set_param(repo: Path, section: str, key: str, value) -> None:
    p = yaml.safe_load((repo / "params.yaml").read_text())
    p[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def test_every_stage_ran_and_report_is_complete(repo):
    report = (repo / "REPORT.md").read_text()
    for section in (
        "## Debiasing methods",
        "## Adversarial attacks",
        "## Explanations",
        "## Explanation-aware backdoor",
        "## Sparse autoencoders",
        "## Claims of the study",
        "## Attention models: where they look",
        "### Which methods are usable on which model",
        "## Bias strength",
    ):
        assert section in report, section
    s = json.loads((repo / "metrics/summary.json").read_text())
    assert {"lazy", "debiased", "attack", "attention_models"} <= set(s)
    vit = json.loads((repo / "metrics/explain/vit.json").read_text())["test_hard"]
    assert {"rollout", "grad_rollout", "attention", "gradcam_final_tokens"} <= set(vit)
    assert vit["gradcam_final_tokens"]["degenerate_rate"] == 1.0  # the class-token head: zero patch gradients
    lazy = json.loads((repo / "metrics/explain/lazy.json").read_text())["test_hard"]
    assert "rollout" not in lazy and "gradcam" in lazy
    # the bias sweep: its own bias (0.99) and dataset.bias's point, read from train-lazy / train-debiased
    rows = (repo / "plots/evaluate/bias_sweep.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0.95", "0.99"], rows
    assert not (repo / "metrics/bias_sweep/0.95").exists()  # never trained twice


def test_branch_diff_reports_exactly_the_changed_keys(repo):
    run(["git", "checkout", "-qb", "more-epochs"], repo)
    try:
        set_param(repo, "train_lazy", "epochs", 2)
        status = json.loads(run(["dvc", "status", "--json"], repo).stdout)
        status = {k.rpartition(":")[2] for k in status}  # family stages: pipelines/<family>/dvc.yaml:<name>
        # the lazy model's analyses, and the bias sweep's lazy runs (they read train_lazy.epochs too)
        lazy_side = {k for k in status if k.startswith(("attack@lazy", "explain@lazy", "sae@lazy", "bias-sweep-lazy@"))}
        allowed = {"check-params", "train-lazy", "evaluate"} | lazy_side
        assert "train-lazy" in status and status <= allowed, status  # nothing else reruns
        run(["dvc", "repro"], repo)
        params = json.loads(run(["dvc", "params", "diff", "main", "--json"], repo).stdout)
        assert list(params) == ["params.yaml"] and list(params["params.yaml"]) == ["train_lazy.epochs"]
        metrics = json.loads(run(["dvc", "metrics", "diff", "main", "--json"], repo).stdout)
        assert list(metrics) == ["metrics/summary.json"], metrics  # the headline numbers are DVC's metrics
        changed = set(metrics["metrics/summary.json"])
        assert any(k.startswith("lazy.") for k in changed), changed
        assert not any(k.startswith(("debiased.", "backdoor.", "attention_models.")) for k in changed), changed
    finally:
        restore(repo)


def test_experiment_shows_its_metrics(repo):
    run(["dvc", "exp", "run", "-S", "train_lazy.lr=0.002", "-n", "lr2"], repo)
    exps = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    text = json.dumps(exps)
    assert "lr2" in text and "metrics/summary.json" in text and "0.002" in text
    run(["dvc", "exp", "remove", "lr2"], repo, check=False)


def test_local_remote_push_pull_with_run_cache(repo, tmp_path):
    run(["dvc", "push", "--run-cache"], repo)
    clone = tmp_path / "b"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    run(["dvc", "remote", "add", "-f", "-d", "local", str(repo.parent / "remote")], clone)
    run(["dvc", "pull", "--run-cache"], clone)
    assert (clone / "data/models/lazy.pt").exists()
    status = json.loads(run(["dvc", "status", "--json"], clone).stdout)
    assert status == {}, status
    assert "Running stage" not in run(["dvc", "repro"], clone).stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd_bin).exists():
        pytest.skip("openssh-server is not installed (.ci/run installs it where it can)")
    if os.geteuid() != 0:
        pytest.skip("the SSH test runs sshd as root on loopback")
    d = tmp_path / "ssh"
    d.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client")], check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    cfg = d / "sshd_config"
    cfg.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nPidFile {d / 'pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\nPermitRootLogin yes\n"
        "StrictModes no\nUsePAM no\nSubsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(cfg)], stderr=subprocess.PIPE)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.skip(f"sshd did not start: {proc.stderr.read().decode()[-300:]}")
    yield {"port": port, "key": d / "client", "root": tmp_path / "ssh-remote"}
    proc.terminate()
    proc.wait(timeout=10)


def _use_ssh(repo: Path, ssh) -> None:
    url = f"ssh://root@127.0.0.1:{ssh['port']}{ssh['root']}"
    run(["dvc", "remote", "add", "-f", "-d", "team", url], repo)
    run(["dvc", "remote", "modify", "--local", "team", "keyfile", str(ssh["key"])], repo)
    run(["dvc", "remote", "modify", "team", "verify", "true"], repo)


def test_ssh_remote_two_collaborators(repo, sshd, tmp_path):
    _use_ssh(repo, sshd)
    run(["dvc", "push", "--run-cache", "-r", "team"], repo)
    assert (repo / ".dvc/config.local").exists()
    clone = tmp_path / "collaborator-b"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    shutil.copy(repo / ".dvc/config", clone / ".dvc/config")  # the committed config names the team remote
    _use_ssh(clone, sshd)
    run(["dvc", "pull", "--run-cache", "-r", "team"], clone)
    assert json.loads(run(["dvc", "status", "--json"], clone).stdout) == {}
    assert "Running stage" not in run(["dvc", "repro"], clone).stdout
    # corrupt the remote copy of one model: with `verify`, a fresh pull re-hashes it and refuses it
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    md5 = next(o["md5"] for o in lock["stages"]["train-lazy"]["outs"] if o["path"] == "data/models/lazy.pt")
    obj = sshd["root"] / "files" / "md5" / md5[:2] / md5[2:]
    assert obj.is_file(), obj
    obj.chmod(0o644)
    obj.write_bytes(b"corrupted" + obj.read_bytes()[9:])
    shutil.rmtree(clone / ".dvc/cache")
    (clone / "data/models/lazy.pt").unlink()
    proc = run(["dvc", "pull", "-r", "team", "data/models/lazy.pt"], clone, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "data/models/lazy.pt" in out, out[-2000:]
    assert not (clone / "data/models/lazy.pt").exists()  # the corrupted object never reaches the workspace


def test_unchanged_repro_changes_no_metric(repo):
    run(["dvc", "repro", "-f", "-s", "train-lazy"], repo)
    run(["dvc", "repro"], repo)
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], repo).stdout)
    assert not any(diff.values()), diff  # timings live in metrics/timings/, outside the science metrics


def test_exp_show_is_readable(repo):
    cols = run(["dvc", "exp", "show", "--csv"], repo).stdout.splitlines()[0].split(",")
    metric_cols = [
        c
        for c in cols
        if c.startswith(("lazy.", "debiased.", "attack.", "sae.", "backdoor.", "attention_models.", "claims."))
    ]
    assert len(metric_cols) <= 100, len(metric_cols)


def test_plots_show_renders_every_plot(repo, tmp_path):
    proc = run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], repo)
    assert "failed" not in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr
    html = (tmp_path / "plots" / "index.html").read_text()
    for pid in (
        "lff - hard-test accuracy per epoch",
        "lazy - targeted 7-&gt;3 PGD success",
        "training curves (lazy)",
        "plots/evaluate/debiasing.png",
        "hard-test accuracy vs bias strength",
    ):
        assert pid in html or pid.replace("-&gt;", "->") in html, pid
