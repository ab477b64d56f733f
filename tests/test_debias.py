import dataclasses
import math

import pytest
import torch
from conftest import PARAMS, repo_section
from test_training import toy_split

from shortcutlab.augment import color_jitter, hsv_to_rgb, rgb_to_hsv
from shortcutlab.debias import (
    channel_scale,
    choose_suppressed,
    focal_loss,
    gce_loss,
    recolor,
    train_method,
)
from shortcutlab.models import build
from shortcutlab.neurons import color_selectivity
from shortcutlab.params import Compute
from shortcutlab.runtime import resolve


def test_focal_loss_hand_computed():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([0, 2])
    p0 = math.exp(2) / (math.exp(2) + 2)
    p1 = 1 / (2 + math.e)
    expect = 0.5 * (-((1 - p0) ** 2) * math.log(p0) - (1 - p1) ** 2 * math.log(p1))
    assert focal_loss(logits, y, 2.0).item() == pytest.approx(expect, rel=1e-6)
    assert focal_loss(logits, y, 0.0).item() == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item())


def test_gce_loss_hand_computed():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    y = torch.tensor([0, 0])  # p = 0.5 and 0.75
    expect = 0.5 * ((1 - 0.5**0.7) / 0.7 + (1 - 0.75**0.7) / 0.7)
    assert gce_loss(logits, y, 0.7).item() == pytest.approx(expect, rel=1e-6)


def test_jitter_changes_hue_per_sample_and_stays_in_range():
    x = torch.zeros(64, 3, 8, 8)
    x[:, 0] = 0.9  # every sample the same red
    x[:, 1] = 0.1
    out = color_jitter(x, torch.Generator().manual_seed(0), 0.0, 0.0, 0.0, 0.3)
    assert out.min() >= 0 and out.max() <= 1
    mean_rgb = out.mean((2, 3))
    assert len({tuple(v) for v in (mean_rgb * 100).round().tolist()}) > 50  # a different draw per sample
    assert torch.allclose(out[:, :, :1, :1].expand_as(out), out)  # spatially uniform edit (color only)
    same = color_jitter(x, torch.Generator().manual_seed(0), 0.0, 0.0, 0.0, 0.0)
    assert torch.allclose(same, x, atol=1e-5)  # zero ranges = identity


def test_hsv_conversions_match_colorsys():
    import colorsys

    rgb = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    rgb[0, :, 0, 0] = torch.tensor([0.5, 0.5, 0.5])  # gray: hue 0, saturation 0
    ref = torch.tensor([colorsys.rgb_to_hsv(*px) for px in rgb.permute(0, 2, 3, 1).reshape(-1, 3).tolist()])
    hsv = rgb_to_hsv(rgb)
    assert torch.allclose(hsv.permute(0, 2, 3, 1).reshape(-1, 3), ref, atol=1e-5)
    back = torch.tensor([colorsys.hsv_to_rgb(*px) for px in ref.tolist()])
    assert torch.allclose(hsv_to_rgb(hsv).permute(0, 2, 3, 1).reshape(-1, 3), back, atol=1e-5)


def test_suppression_hooks_scale_exactly_the_chosen_channels():
    csi = torch.tensor([0.1, 3.0, 0.2, 2.5, 0.3, 0.0, 1.0, 0.4])
    chosen = choose_suppressed(csi, 0.25)
    assert chosen == [1, 3]
    scale = channel_scale(8, chosen, 0.3, 3.0)
    torch.manual_seed(0)
    plain = build("two_conv", width=8).eval()
    torch.manual_seed(0)
    hooked = build("two_conv", width=8, channel_scale=scale).eval()
    acts = {}
    plain.conv2.register_forward_hook(lambda m, i, o: acts.setdefault("p", o))
    hooked.conv2.register_forward_hook(lambda m, i, o: acts.setdefault("h", o))
    hooked.pool.register_forward_pre_hook(lambda m, i: acts.setdefault("hin", i[0]))
    x = torch.rand(2, 3, 28, 28)
    plain(x)
    hooked(x)
    expect = acts["p"] * torch.tensor(scale)[:, None, None]
    assert torch.allclose(acts["hin"], expect)


def test_csi_definition():
    r = torch.zeros(10, 2)
    r[3, 0] = 1.0  # unit 0 answers one color only
    r[:, 1] = torch.arange(10.0)
    csi = color_selectivity(r)
    assert csi[0] == pytest.approx((1 - 0.1) / (r[:, 0].std().item() + 1e-8))
    assert csi[0] > csi[1]


def test_recolor_keeps_background():
    s = toy_split(16)
    s.gray[:, :10] = 0
    new = (s.color + 1) % 10
    r = recolor(s, new)
    assert torch.equal(r.color, new) and r.conflict.all()


@pytest.mark.parametrize("method", list(PARAMS["train_debiased"]["methods"]))
def test_every_method_trains_a_tiny_epoch(method):
    rt = resolve(Compute(device="cpu", precision="fp32", threads=0))
    common = repo_section("train_debiased", seeds=[0], batch_size=64)
    cfg = common.method(method)
    cfg = dataclasses.replace(
        cfg,
        epochs=1,
        **({"probe_epochs": 1} if hasattr(cfg, "probe_epochs") else {}),
        **({"id_epochs": 1} if hasattr(cfg, "id_epochs") else {}),
    )
    split = toy_split(256)
    model, arch, kw, hist, extra = train_method(method, cfg, common, split, rt, 0, {"val": split})
    assert math.isfinite(hist[-1]["train_loss"]) and 0 <= hist[-1]["val_acc"] <= 1
    assert model(torch.rand(2, 3, 28, 28)).shape == (2, 10)


def test_the_two_rebias_hsic_estimators():
    """median (ours): scale-free; published (clovaai/rebias's Biased-MNIST default): fixed sigma 1, unbiased, so
    features far smaller than sigma look alike. Both ~0 for independent features, clearly > 0 for dependent ones;
    the unbiased estimate ignores a constant added to the kernel off the diagonal (how the reference code's
    K - diag(K) broadcast, which subtracts 1 everywhere, comes out the same)."""
    from shortcutlab.debias import HSIC, rbf_hsic, unbiased_hsic

    g = torch.Generator().manual_seed(0)
    a = torch.randn(128, 8, generator=g)
    b = torch.randn(128, 8, generator=g)
    dep = a + 0.1 * torch.randn(128, 8, generator=g)
    for f in (rbf_hsic, unbiased_hsic):
        assert f(a, dep) > 5 * abs(f(a, b))  # the biased estimator sits above 0 when independent
    assert torch.allclose(rbf_hsic(a * 1e-3, dep * 1e-3), rbf_hsic(a, dep), rtol=1e-4)  # scale-free
    assert abs(unbiased_hsic(a * 1e-3, dep * 1e-3)) < 1e-3 * unbiased_hsic(a, dep)  # not: tiny features look alike

    def shifted(x, y):  # the unbiased formula on K - 1 (diagonal 0, off-diagonal shifted by -1)
        k = torch.exp(-torch.cdist(x, x).pow(2) / 2) - 1
        l_ = torch.exp(-torch.cdist(y, y).pow(2) / 2) - 1
        n = len(x)
        t = torch.trace(k @ l_) + k.sum() * l_.sum() / ((n - 1) * (n - 2)) - 2 * k.sum(0).dot(l_.sum(0)) / (n - 2)
        return t / (n * (n - 3))

    assert torch.allclose(unbiased_hsic(a, dep), shifted(a, dep), atol=1e-6)
    assert set(HSIC) == {"median", "published"}
