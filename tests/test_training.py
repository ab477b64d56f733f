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


def test_the_training_images_are_stored_in_the_runtime_layout_with_the_same_values():
    from shortcutlab.runtime import Runtime
    from shortcutlab.training import stored_for

    split = toy_split(64)
    cl = torch.channels_last
    bf16 = Runtime(torch.device("cpu"), bf16=True)  # channels-last on a CPU
    stored = stored_for(split, bf16)
    assert stored.x.is_contiguous(memory_format=cl) and split.x.is_contiguous()  # the caller's split is untouched
    assert torch.equal(stored.x, split.x) and stored.y is split.y
    idx = torch.tensor([5, 0, 63, 7])
    batch, before = bf16.input(stored.images(idx)), bf16.input(split.images(idx))
    assert batch.stride() == before.stride() and torch.equal(batch, before)  # what the model reads: same bytes
    assert stored_for(stored, bf16) is stored
    assert stored_for(split, Runtime(torch.device("cpu"), bf16=False)) is split  # fp32: NCHW, nothing copied


def test_fit_gives_the_same_model_from_either_layout():
    from shortcutlab.runtime import Runtime

    rt = Runtime(torch.device("cpu"), bf16=True)
    models = []
    for x in (toy_split().x, toy_split().x.contiguous(memory_format=torch.channels_last)):
        s = toy_split()
        seed_everything(0)
        m = build("lazy")
        fit(m, Split(x, s.y, s.color, s.conflict, s.gray, s.palette), FitConfig(1, 1e-2, 64, 0), rt)
        models.append(m.state_dict())
    for k, v in models[0].items():
        assert torch.equal(v, models[1][k]), k
