"""Check every object the current dvc.lock needs against the remote: present, and its bytes hash to its name.

`dvc pull` with `verify = true` refuses a corrupted object but only says "Checkout failed ... Is your cache up
to date?". This names the file, the object and what to do:

    python scripts/check_remote.py [-r REMOTE]      (exit 0: all good; 1: something is missing or corrupt)

`make pull` runs it whenever `dvc pull` fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

from dvc.repo import Repo


def _md5(fs, path: str) -> str:
    h = hashlib.md5()
    with fs.open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _objects(repo):
    """(workspace path, md5) of every DVC-cached output the lock records (git-tracked ones, cache: false, are
    never pushed); a directory's files come from its .dir listing."""
    for stage in repo.index.stages:
        for out in stage.outs:
            if out.use_cache and out.hash_info and out.hash_info.value:
                yield str(out.def_path), out.hash_info.value


def check(remote: str | None = None) -> list[str]:
    problems = []
    with Repo(".") as repo:
        odb = repo.cloud.get_remote_odb(remote)
        fs = odb.fs
        for path, md5 in _objects(repo):
            todo = [(path, md5)]
            while todo:
                p, h = todo.pop()
                obj = odb.oid_to_path(h)
                if not fs.exists(obj):
                    problems.append(
                        f"{p}: missing on the remote (object {obj}): push it from a machine that has it "
                        f"(`dvc push {path}`) or rebuild it (`dvc repro`)"
                    )
                    continue
                actual = _md5(fs, obj)
                if actual != h.removesuffix(".dir"):
                    problems.append(
                        f"{p}: CORRUPT on the remote (object {obj} hashes to {actual}, not {h}): delete "
                        f"that object and push a good copy (`dvc push {path}`), or rebuild it (`dvc repro`)"
                        "; never pull with `verify` off"
                    )
                    continue
                if h.endswith(".dir"):
                    with fs.open(obj, "r") as f:
                        todo += [(f"{p}/{e['relpath']}", e["md5"]) for e in json.load(f)]
    return problems


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("-r", "--remote", default=None)
    problems = check(ap.parse_args().remote)
    for line in problems:
        print(line, file=sys.stderr)
    print(f"check-remote: {len(problems)} problem(s)" if problems else "check-remote: every object present and intact")
    sys.exit(1 if problems else 0)
