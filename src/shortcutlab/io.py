"""Atomic writes and safe, verified loading of every artifact the pipeline produces.

Writers go to a temporary file in the destination directory and ``os.replace`` it into place, so an
interrupted stage never leaves a half-written file for DVC to cache. Loaders never unpickle:
weights with ``torch.load(weights_only=True)``, arrays with ``allow_pickle=False``. Checkpoints and array
files carry a SHA-256 digest of their contents, written at save time and checked at load (``torch.load``
checks no CRC: a flipped bit in a weight would otherwise load silently). Every load error is an
:class:`ArtifactError` that names the file and says how to recover it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ArtifactError

# torch is imported where it is used: stages that never touch a tensor (check-params, evaluate) skip its ~2 s


def recovery(path: str | Path) -> str:
    return (
        f"restore it with `dvc checkout {path}` (or `dvc pull {path}` from the remote), or rebuild it with `dvc repro`"
    )


def _missing(path: Path) -> ArtifactError:
    return ArtifactError(f"{path}: missing (run the stage that produces it: dvc repro)")


def _corrupt(path: Path, why: str) -> ArtifactError:
    return ArtifactError(f"{path}: corrupt or unreadable ({why}); {recovery(path)}")


DIGEST_KEY = "sha256"  # the tensors' (or arrays') digest inside a checkpoint (or .npz file)


def tensors_digest(tensors: dict[str, Any]) -> str:
    """SHA-256 over every tensor/array in name order: name, dtype, shape and raw bytes."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        a = t.detach().cpu().contiguous() if isinstance(t, torch.Tensor) else np.ascontiguousarray(t)
        raw = a.reshape(-1).view(torch.uint8).numpy().tobytes() if isinstance(a, torch.Tensor) else a.tobytes()
        h.update(f"{name}|{a.dtype}|{tuple(a.shape)}|".encode())
        h.update(raw)
    return h.hexdigest()


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
    if hasattr(obj, "tolist") and not isinstance(obj, (int, float, str)):  # a tensor or an array
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
        raise _missing(path)
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _corrupt(path, f"not valid JSON: {e}") from e


def write_timings(stage: str, timings: dict) -> None:
    """Wall-clock figures of a stage (seconds, images/s, maps/s): their own file under metrics/timings/,
    outside the science metrics, so rerunning an unchanged pipeline changes no metric."""
    write_json(Path("metrics/timings") / f"{stage.replace('@', '-')}.json", timings)


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    for k, v in arrays.items():
        if np.asarray(v).dtype == object:
            raise TypeError(f"{path}: array {k!r} has dtype object; refusing to write a pickled array")
    if DIGEST_KEY in arrays:
        raise ValueError(f"{path}: {DIGEST_KEY!r} is reserved for the file's digest")
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    arrays[DIGEST_KEY] = np.asarray(tensors_digest(arrays))
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def read_npz(path: str | Path, verify: bool = True) -> dict[str, np.ndarray]:
    """Arrays of an .npz file (never unpickled); with ``verify`` its digest must be present and match."""
    path = Path(path)
    if not path.exists():
        raise _missing(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:  # an object array: refusing to unpickle is not corruption of ours to repair
        if "allow_pickle" in str(e):
            raise ArtifactError(f"{path}: holds a pickled (object) array; refusing to load it. {recovery(path)}") from e
        raise _corrupt(path, str(e)) from e
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise _corrupt(path, f"{type(e).__name__}: {e}") from e
    if verify:
        digest = arrays.pop(DIGEST_KEY, None)
        if digest is None:
            raise _corrupt(path, f"no {DIGEST_KEY!r} digest: not written by this pipeline")
        if str(digest) != tensors_digest(arrays):
            raise _corrupt(path, "its arrays do not match the digest written at save time")
    return arrays


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Save a model checkpoint: tensors plus plain metadata (str/int/float/list/dict only), with the digest
    of its ``state_dict`` tensors."""
    if "state_dict" in state:
        state = {**state, DIGEST_KEY: tensors_digest(state["state_dict"])}
    # Serialise to memory first: torch.save names the zip's inner folder after the file it writes to,
    # and the temporary file's random name would make identical weights differ byte for byte.
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes(path, buf.getvalue())


def load_state(path: str | Path, map_location="cpu") -> dict[str, Any]:
    """A checkpoint, loaded weights-only (no code runs) and checked against its digest."""
    import torch

    path = Path(path)
    if not path.exists():
        raise _missing(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refused a global: a hostile or foreign file
        raise ArtifactError(
            f"{path}: not a weights-only checkpoint, refusing to load it ({str(e).splitlines()[0]}); {recovery(path)}"
        ) from e
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise _corrupt(path, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    if not isinstance(state, dict):
        raise _corrupt(path, "not a checkpoint dictionary")
    if "state_dict" in state:
        digest = state.pop(DIGEST_KEY, None)
        if digest is None:
            raise _corrupt(path, f"no {DIGEST_KEY!r} digest: not written by this pipeline")
        if digest != tensors_digest(state["state_dict"]):
            raise _corrupt(path, "its tensors do not match the digest written at save time")
    return state


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
