"""runtime.keep_freed_memory: the allocator setting that removes per-step page faults and changes nothing else.
Each check runs in a fresh process: the setting is process-wide and applied once."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

FAULTS = """
import json, resource, torch
from shortcutlab.runtime import keep_freed_memory
kept = keep_freed_memory()
def faults():
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        x = torch.ones(16_000_000)  # 64 MB: above glibc's largest mmap threshold
        del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0
faults()
print(json.dumps({"kept": kept, "faults": faults()}))
"""

TRAIN = """
import hashlib, io, sys, torch
sys.path.insert(0, "tests")
from test_training import train_once
m, hist = train_once(sys.argv[1])
buf = io.BytesIO()
torch.save(m.state_dict(), buf)
print(hashlib.sha256(buf.getvalue()).hexdigest(), repr(hist[-1]["train_loss"]))
"""


def _run(code, setting, *args):
    env = dict(os.environ, SHORTCUTLAB_MALLOC=setting)
    out = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


@glibc_only
def test_kept_memory_is_reused_without_page_faults():
    kept = json.loads(_run(FAULTS, "kept"))
    default = json.loads(_run(FAULTS, "default"))
    assert kept["kept"] and not default["kept"]
    assert default["faults"] > 10 * 10_000  # each 64 MB block mapped afresh: ~15,600 pages
    assert kept["faults"] < 1_000


@glibc_only
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_is_byte_identical_under_either_allocator(precision):
    assert _run(TRAIN, "kept", precision) == _run(TRAIN, "default", precision)
