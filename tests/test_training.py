import numpy as np
import torch

from shortcutlab.data import Split
from shortcutlab.models import build
from shortcutlab.params import Compute
from shortcutlab.runtime import resolve, seed_everything
from shortcutlab.training import FitConfig, fit


def toy_split(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    pal = torch.rand(10, 3, generator=g)
    x = (pal[y][:, :, None, None].expand(n, 3, 28, 28) * 255).to(torch.uint8).contiguous()
    gray = torch.full((n, 28, 28), 255, dtype=torch.uint8)
    return Split(x, y, y.clone(), torch.zeros(n, dtype=torch.bool), gray, pal)


def train_once(precision="fp32"):
    rt = resolve(Compute(device="auto", precision=precision, threads=0))
    seed_everything(0)
    m = build("lazy")
    hist = fit(m, toy_split(), FitConfig(epochs=2, lr=1e-2, batch_size=64, seed=0), rt)
    return m, hist


def test_fit_learns_and_is_deterministic():
    m1, h1 = train_once()
    m2, h2 = train_once()
    assert all(np.isfinite(r["train_loss"]) for r in h1)
    assert h1[-1]["train_loss"] < h1[0]["train_loss"]
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_bf16_path_runs():
    _, h = train_once("bf16")
    assert np.isfinite(h[-1]["train_loss"])
