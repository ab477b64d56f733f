"""Attention models (issue 9): attention weights, rollout, token Grad-CAM, degenerate maps, training."""

import copy

import pytest
import torch
from conftest import PARAMS, repo_section

from shortcutlab import trust
from shortcutlab.attention import frozen_probe, train_run
from shortcutlab.attribution import (
    METHODS,
    AttentionMap,
    AttentionRollout,
    GradCAM,
    GradCAMFinalTokens,
    GradRollout,
    applicable,
    make,
    rollout,
    tokens_to_grid,
)
from shortcutlab.data import Split
from shortcutlab.models import build, capture
from shortcutlab.params import AttentionRun, FrozenProbe, validate
from shortcutlab.runtime import Runtime


def test_attention_weights_sum_to_one_per_image():
    torch.manual_seed(0)
    m = build("attention").eval()
    x = torch.rand(6, 3, 28, 28)
    with capture(m, m.attention_layer) as box:
        m(x)
    a = box["a"]
    assert a.shape == (6, 49) and (a >= 0).all()
    torch.testing.assert_close(a.sum(1), torch.ones(6))
    v = build("vit").eval()
    with capture(v, v.attention_probs[0]) as box:
        v(x)
    torch.testing.assert_close(box["a"].sum(-1), torch.ones(6, 4, 50))


def test_attention_pooling_is_the_weighted_sum():
    torch.manual_seed(0)
    m = build("attention").eval()
    x = torch.rand(3, 3, 28, 28)
    f = m.conv2(m.conv1(x))
    a = torch.softmax(m.score(f).flatten(1), 1)
    want = m.fc((f.flatten(2) * a[:, None]).sum(2))
    torch.testing.assert_close(m(x), want)


def test_rollout_of_identity_attention_is_uniform_and_of_uniform_attention_too():
    n, t = 2, 50
    ident = [torch.eye(t).expand(n, 4, t, t)] * 3
    r = rollout(ident)  # the class token only attends to itself: every patch gets the same (zero) share
    assert r.shape == (n, 49) and torch.all(r == r[:, :1]) and trust.degenerate(r.view(n, 7, 7)).all()
    uni = [torch.full((n, 4, t, t), 1.0 / t)] * 3
    r = rollout(uni)
    torch.testing.assert_close(r, r[:, :1].expand_as(r))
    assert (r > 0).all() and trust.degenerate(r.view(n, 7, 7)).all()


def test_rollout_follows_a_single_path():
    # block 1: the class token attends only to patch 5; later blocks: identity -> the map peaks at patch 5
    t = 50
    a1 = torch.eye(t).clone()
    a1[0] = 0
    a1[0, 6] = 1.0
    probs = [a1.expand(1, 2, t, t), torch.eye(t).expand(1, 2, t, t)]
    r = rollout(probs)
    assert int(r.argmax()) == 5 and not trust.degenerate(r.view(1, 7, 7)).any()


def test_attention_methods_on_a_vit_and_class_dependence():
    torch.manual_seed(0)
    m = build("vit").eval()
    x = torch.rand(4, 3, 28, 28)
    for cls in (AttentionMap, AttentionRollout, GradRollout, GradCAM):
        out = cls(m).attribute(x, torch.zeros(4, dtype=torch.long))
        assert out.shape == (4, 28, 28) and torch.isfinite(out).all()
    # class-independent methods give the same map for any target; the gradient-weighted ones do not
    for cls, same in ((AttentionRollout, True), (AttentionMap, True), (GradRollout, False)):
        a, b = (cls(m).attribute(x, torch.full((4,), k)) for k in (0, 1))
        assert torch.equal(a, b) == same, cls.name


def test_final_token_gradcam_is_all_zero_and_flagged():
    """The head reads the class token only: the last block's patch tokens get exactly zero gradient."""
    torch.manual_seed(0)
    m = build("vit").eval()
    x = torch.rand(5, 3, 28, 28)
    maps = GradCAMFinalTokens(m).attribute(x, torch.arange(5), relu=False)
    assert torch.count_nonzero(maps) == 0 and trust.degenerate(maps).all()
    inner = GradCAM(m).attribute(x, torch.arange(5), relu=False)  # the last block's input tokens
    assert torch.count_nonzero(inner) > 0


def test_tokens_to_grid_drops_the_class_token():
    t = torch.arange(2 * 50 * 3, dtype=torch.float).view(2, 50, 3)
    g = tokens_to_grid(t)
    assert g.shape == (2, 3, 7, 7) and torch.equal(g[:, :, 0, 0], t[:, 1]) and torch.equal(g[:, :, 6, 6], t[:, 49])
    with pytest.raises(ValueError, match="square grid"):
        tokens_to_grid(torch.zeros(1, 49, 3))


def test_degenerate_detection():
    peaked = torch.zeros(1, 28, 28)
    peaked[0, 10:14, 10:14] = 1.0
    maps = torch.cat([torch.zeros(1, 28, 28), torch.full((1, 28, 28), 0.3), peaked])
    assert trust.degenerate(maps).tolist() == [True, True, False]


def test_identical_maps_for_two_classes():
    a = torch.rand(3, 28, 28)
    b = a.clone() * 2 + 1  # same map up to scale and shift
    b[2] = torch.rand(28, 28)
    assert trust.identical(a, b).tolist() == [True, True, False]
    assert trust.identical(torch.zeros(1, 28, 28), torch.zeros(1, 28, 28)).all()


def test_applicable_methods_per_architecture():
    assert applicable(list(METHODS), build("convnet")) == list(METHODS)[:7]
    assert "attention" in applicable(list(METHODS), build("attention"))
    assert "rollout" not in applicable(list(METHODS), build("attention"))
    assert set(applicable(list(METHODS), build("vit"))) == set(METHODS)
    with pytest.raises(AttributeError):
        make("rollout", build("convnet")).attribute(torch.rand(1, 3, 28, 28), 0)


def _tiny_split(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    gray = (torch.rand(n, 28, 28, generator=g) * 255).to(torch.uint8)
    x = (torch.rand(n, 3, 28, 28, generator=g) * 255).to(torch.uint8)
    pal = torch.rand(10, 3, generator=g)
    return Split(x, y, y.clone(), torch.zeros(n, dtype=torch.bool), gray, pal)


@pytest.mark.parametrize("method", ["erm", "consistency"])
def test_vit_trains_a_tiny_epoch_with_finite_loss(method):
    common = repo_section("train_attention", batch_size=64)
    run = AttentionRun(arch="vit", method=method, epochs=1, lr=1e-3, schedule="cosine", seeds=[0])
    rt = Runtime(torch.device("cpu"), False)
    model, kw, hist = train_run(run, common, _tiny_split(), rt, evals={}, seed=0)
    assert kw == {"patch": 4, "dim": 64, "depth": 3, "heads": 4, "mlp": 128}
    assert len(hist) == 1 and torch.isfinite(torch.tensor(hist[0]["train_loss"]))


def test_frozen_probe_trains_only_the_head():
    torch.manual_seed(0)
    m = build("vit", depth=1, dim=32, heads=2, mlp=32)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    rt = Runtime(torch.device("cpu"), False)
    probe = FrozenProbe(backbone="vit_debiased", epochs=1, lr=1e-2, seeds=[0])
    frozen_probe(m, probe, 64, _tiny_split(), rt, evals={}, seed=0)
    after = m.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.weight", "head.bias"}


def test_train_attention_params_are_checked():
    p = copy.deepcopy(PARAMS)
    p["train_attention"]["frozen"]["backbone"] = "attention"
    with pytest.raises(Exception, match="frozen.backbone"):
        validate(p)
    p = copy.deepcopy(PARAMS)
    p["train_attention"]["vit"]["heads"] = 5
    with pytest.raises(Exception, match="vit.heads"):
        validate(p)
