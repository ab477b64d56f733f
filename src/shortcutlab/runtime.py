"""Device, precision, threads and seeds: resolved once per stage from the ``compute`` params."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX): then autocast pays off."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


@lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Serve every allocation from the heap and keep freed memory there for reuse (glibc only; True if set).

    glibc's default maps each allocation above a threshold afresh and unmaps it on free, so a training step
    whose activations cross the threshold page-faults through all of them again, every step (the consistency
    recipe: 1.8 M minor page faults and 3.2 s of kernel time in one 10,000-image epoch, 1.75x its wall time;
    ``benchmarks/bench_malloc.py``). Where memory comes from, not what is computed: outputs are unchanged, byte
    for byte. ``SHORTCUTLAB_MALLOC=default`` leaves glibc as it is (the benchmark compares the two)."""
    if os.environ.get("SHORTCUTLAB_MALLOC") == "default":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt)
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    bf16: bool

    @property
    def channels_last(self) -> bool:
        return self.bf16 and self.device.type == "cpu"

    def autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def describe(self) -> str:
        return f"{self.device.type}/{'bf16' if self.bf16 else 'fp32'}"


def resolve(compute) -> Runtime:
    keep_freed_memory()
    if compute.threads:
        torch.set_num_threads(compute.threads)
    if compute.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("compute.device: 'cuda' requested but no CUDA device is available")
    dev = torch.device(
        "cuda" if compute.device == "cuda" or (compute.device == "auto" and torch.cuda.is_available()) else "cpu"
    )
    if compute.precision == "fp32":
        bf16 = False
    elif compute.precision == "bf16":
        bf16 = True
    else:
        bf16 = torch.cuda.is_bf16_supported() if dev.type == "cuda" else cpu_has_bf16()
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return Runtime(dev, bf16)


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def quiet() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("SHORTCUTLAB_QUIET") == "1"
