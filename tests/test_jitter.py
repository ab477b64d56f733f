"""augment.color_jitter: the C++ kernel gives the PyTorch operators' values bit for bit, on every kind of pixel
(gray, black, white, primaries, sextant boundaries) and every factor (the extremes included), whatever the
input's memory layout; and with the kernel switched off the function takes the operators."""

import pytest
import torch

from shortcutlab import augment

needs_ext = pytest.mark.skipif(augment.extension() is None, reason="the extension could not be built here")
KW = dict(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.3, extreme_frac=0.5)


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.int32)


def digits(n: int, seed: int) -> torch.Tensor:
    """Colored-MNIST-like images: a colored stroke on black, plus pixels that stress RGB -> HSV: grays (no hue),
    pure black and white, primaries and secondaries (hue on a sextant boundary), random colors, 1/255 steps."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 3, 28, 28)
    stroke = torch.rand(n, 1, 28, 28, generator=g) > 0.8
    x += stroke * torch.rand(n, 3, 1, 1, generator=g)
    x[:, :, 0, :] = torch.rand(n, 1, 28, generator=g)  # grays
    x[:, :, 1, :] = 1.0
    corners = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 0.5, 0]]).float()
    x[:, :, 2, :7] = corners.T[None]
    x[:, :, 3, :] = torch.rand(n, 3, 28, generator=g)
    x[:, :, 4, :] = torch.randint(0, 256, (n, 3, 28), generator=g).float() / 255
    return x


def factors(n: int, seed: int):
    """Brightness, contrast, saturation (N,1,1,1) and hue shifts (N,), the ends of each range included."""
    g = torch.Generator().manual_seed(seed)
    f = [torch.rand(n, generator=g) * 2 for _ in range(3)]
    h = torch.rand(n, generator=g) - 0.5
    for t in f:
        t[:4] = torch.tensor([0.0, 2.0, 1.0, 0.2])
    h[:4] = torch.tensor([-0.5, 0.5, 0.0, 0.3])
    return [t[:, None, None, None] for t in f] + [h]


@needs_ext
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_kernel_gives_the_operators_bits(seed, layout):
    x = digits(64, seed).contiguous(memory_format=layout)
    b, c, s, h = factors(64, seed)
    want = augment.jitter_ops(x, b, c, s, h)
    got = augment._jitter_kernel(x, b, c, s, h)
    assert torch.equal(bits(got), bits(want))


@needs_ext
def test_color_jitter_is_the_same_with_the_kernel_and_without(monkeypatch):
    x = digits(256, 7).contiguous(memory_format=torch.channels_last)
    fast = [augment.color_jitter(x, torch.Generator().manual_seed(k), **KW) for k in range(3)]
    monkeypatch.setenv("SHORTCUTLAB_FUSED", "0")
    augment.extension.cache_clear()
    try:
        assert augment.extension() is None
        slow = [augment.color_jitter(x, torch.Generator().manual_seed(k), **KW) for k in range(3)]
    finally:
        augment.extension.cache_clear()
    for a, b in zip(fast, slow, strict=True):
        assert torch.equal(bits(a), bits(b))
    assert not torch.equal(fast[0], fast[1])  # the draws differ per generator: the test can fail


@needs_ext
@pytest.mark.parametrize("m", [1.0, 6.0])
def test_the_kernels_remainder_is_pytorchs(m):
    """Floats within 1,000 ulps of each multiple of m in [-13m, 13m] (where a rounded quotient goes wrong), a random
    sample of [-13, 13], and -0."""
    near = torch.tensor([k * m for k in range(-13, 14)]).repeat_interleave(2001)
    step = torch.arange(-1000, 1001).repeat(27).float()
    a = near + step * torch.finfo(torch.float32).eps * near.abs().clamp_min(1)
    a = torch.cat([a, torch.rand(200_000, generator=torch.Generator().manual_seed(0)) * 26 - 13, torch.tensor([-0.0])])
    got = augment.extension().remainder(a.contiguous(), m)
    assert torch.equal(bits(got), bits(torch.remainder(a, m)))


def test_bad_factors_are_refused():
    if augment.extension() is None:
        pytest.skip("the extension could not be built here")
    x = torch.rand(4, 3, 8, 8)
    with pytest.raises(RuntimeError, match="one per image"):
        augment.extension().brightness(x, torch.ones(3), torch.tensor(augment.LUMA))


def test_the_replay_script_finds_the_consistency_runs_and_counts_differences(tmp_path, monkeypatch):
    """scripts/recheck_jitter_kernel.py: every consistency run the default params configure, and a replay on a
    small split that counts 0 differing values (its kernel and operator paths really differ: see the others)."""
    import importlib.util

    import numpy as np

    from shortcutlab.io import write_npz
    from shortcutlab.params import load
    from shortcutlab.runtime import resolve

    spec = importlib.util.spec_from_file_location("recheck", "scripts/recheck_jitter_kernel.py")
    recheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recheck)
    p = load("params.yaml")
    names = [r[0] for r in recheck.runs(p)]
    assert "train-debiased@consistency" in names and "train-attention@vit_debiased" in names
    assert sum(n.startswith("bias-sweep@") for n in names) == len(p["bias_sweep"].biases)
    if augment.extension() is None:
        return
    x = (digits(40, 3) * 255).round().to(torch.uint8).numpy()
    y = np.arange(40) % 10
    write_npz(
        tmp_path / "train.npz",
        x=x,
        y=y,
        color=y,
        conflict=np.zeros(40, bool),
        gray=x[:, 0],
        palette=np.random.default_rng(0).random((10, 3)).astype(np.float32),
    )
    cfg = p["train_debiased"].method("consistency")
    rt = resolve(p["compute"])
    out = recheck.replay(tmp_path / "train.npz", 2, [0, 1], cfg, 16, rt, augment.extension)
    assert out == {"batches": 12, "images": 160, "differing_values": 0}
    assert augment.extension() is not None  # the script puts the kernel back
