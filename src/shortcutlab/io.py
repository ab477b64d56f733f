"""Atomic writes and safe loading of every artifact the pipeline produces.

Writers go to a temporary file in the destination directory and ``os.replace`` it into place, so an
interrupted stage never leaves a half-written file for DVC to cache. Loaders never unpickle:
weights with ``torch.load(weights_only=True)``, arrays with ``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ""):
    """Yield a temporary path next to ``path``; on success rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or ".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        obj = obj.item()
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.tolist())
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"non-finite value {obj} cannot be written to a metrics file")
        return obj
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (run the stage that produces it: dvc repro)")
    return json.loads(path.read_text())


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    for k, v in arrays.items():
        if np.asarray(v).dtype == object:
            raise TypeError(f"{path}: array {k!r} has dtype object; refusing to write a pickled array")
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (run the stage that produces it: dvc repro)")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Save a model checkpoint: tensors plus plain metadata (str/int/float/list/dict only)."""
    # Serialise to memory first: torch.save names the zip's inner folder after the file it writes to,
    # and the temporary file's random name would make identical weights differ byte for byte.
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes(path, buf.getvalue())


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (run the stage that produces it: dvc repro)")
    return torch.load(path, map_location=map_location, weights_only=True)


def save_figure(path: str | Path, fig) -> None:
    """Save a matplotlib figure atomically (PNG, fixed metadata so bytes are reproducible)."""
    import matplotlib.pyplot as plt

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def write_csv(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Write rows as CSV (for dvc plots). Floats keep a decimal point."""
    if not rows:
        raise ValueError(f"{path}: no rows to write")
    cols = list(rows[0])
    lines = [",".join(cols)]
    for r in rows:
        lines.append(",".join(_fmt(r[c]) for c in cols))
    write_text(path, "\n".join(lines) + "\n")


def _fmt(v: Any) -> str:
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"non-finite value {v} in a plots file")
        return repr(v)
    return str(v)
