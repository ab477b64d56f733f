"""Building the C++ kernels in ``kernels/`` (``torch.utils.cpp_extension``): one build per CPU, torch installation,
source and compiler flags, cached under ``~/.cache/torch_extensions`` or ``$TORCH_EXTENSIONS_DIR`` and shared by
every checkout of one environment. Each kernel gives PyTorch's own bits (``fused.py``, ``augment.py``); when one
cannot be built (no compiler) its caller falls back to PyTorch's operators, with a warning, and
``SHORTCUTLAB_FUSED=0`` turns every kernel off."""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import warnings
from pathlib import Path

import torch

KERNELS = Path(__file__).with_name("kernels")


def enabled() -> bool:
    return os.environ.get("SHORTCUTLAB_FUSED") != "0"


def cpu_tag() -> str:
    """The CPU's model and flags: the extensions are compiled with -march=native, for the CPU that runs them."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        return "\n".join([ln for ln in info.splitlines() if ln.startswith(("model name", "flags"))][:2])
    except OSError:
        return platform.processor()


def native_flags() -> list[str]:
    return ["-march=native"] if platform.machine() in ("x86_64", "AMD64") else []


def build_dir(source: Path, flags: list[str]) -> tuple[str, Path]:
    """One build per CPU, torch installation, source and flags, shared by every checkout: the source is copied
    there, as ninja rebuilds whenever the paths it compiles with change (a second clone would otherwise rebuild
    it, ≈ 7 s, and two checkouts with their own venvs would rebuild it in turn)."""
    text = source.read_bytes()
    where = torch.__file__  # each environment's torch headers: another venv gets its own build, not a rebuild
    key = hashlib.sha256(f"{cpu_tag()}\n{where}\n{' '.join(flags)}\n".encode() + text).hexdigest()[:12]
    name = f"shortcutlab_{source.stem}_{key}"
    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions")
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    if not (d / source.name).exists() or (d / source.name).read_bytes() != text:
        tmp = d / f".{source.name}.{os.getpid()}"
        tmp.write_bytes(text)
        tmp.replace(d / source.name)
    return name, d


def _cpp_extension_load():
    """torch's extension loader, imported without its "No CUDA runtime is found" warning on a CPU machine."""
    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        from torch.utils.cpp_extension import load
    finally:
        log.setLevel(level)
    return load


def compiling() -> bool:
    """True while ``torch.compile`` traces: then the kernels step aside for PyTorch's operators, whose bits they
    reproduce (the compiler sees those ops; a kernel is an operator without a shape function for its fake tensors)."""
    return torch.compiler.is_compiling()


def load(source: Path, flags: list[str]):
    """The operators of ``source``'s compiled library, or None (disabled, or it could not be built: then a warning).
    Each kernel registers custom operators (``TORCH_LIBRARY``, ``<torch/library.h>``) instead of a pybind11 module
    (``<torch/extension.h>``): the same machine code, a third of the build time (≈ 7 s instead of ≈ 21 s on our
    2-core CPUs, the headers being most of it), about 1 µs more per call; ``ops.forward(...)`` as before."""
    if not enabled():
        return None
    try:
        name, d = build_dir(source, flags)
        _cpp_extension_load()(
            name,
            [str(d / source.name)],
            extra_cflags=flags,
            extra_ldflags=["-fopenmp"],
            build_directory=str(d),
            is_python_module=False,
        )
        return getattr(torch.ops, name)
    except Exception as e:  # no compiler, no ninja, an unsupported platform: PyTorch's ops give the same bits
        why = f"{type(e).__name__}: {e}"
        warnings.warn(f"shortcutlab: {source.name} not built ({why}); PyTorch's ops used", stacklevel=3)
        return None
