import pytest
import torch

from shortcutlab.attribution import (
    GradCAM,
    GradCAMpp,
    InputXGradient,
    IntegratedGradients,
    LayerCAM,
    Saliency,
    SmoothGrad,
)
from shortcutlab.models import build, get_module
from shortcutlab.trust import (
    class_contrast,
    concentration_ratio,
    degenerate,
    foreground_mass,
    spearman,
)

captum = pytest.importorskip("captum.attr")


@pytest.fixture(scope="module", params=["two_conv", "convnet", "lazy"])
def model(request):
    torch.manual_seed(0)
    m = build(request.param).eval()
    for p in m.parameters():  # random but not tiny weights
        p.data.normal_(0, 0.3)
    return m


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(1)
    return torch.rand(6, 3, 28, 28), torch.tensor([0, 3, 5, 9, 1, 3])


def test_gradcam_equals_captum(model, batch):
    x, t = batch
    ours = GradCAM(model, upsample=False).attribute(x, t)
    ref = captum.LayerGradCam(model, get_module(model, model.cam_layer)).attribute(x, target=t, relu_attributions=True)
    assert torch.allclose(ours, ref[:, 0], atol=1e-5)


@pytest.mark.parametrize("ours_cls,ref_cls", [(Saliency, "Saliency"), (InputXGradient, "InputXGradient")])
def test_input_gradients_equal_captum(model, batch, ours_cls, ref_cls):
    x, t = batch
    ours = ours_cls(model).attribute(x, t)
    ref = getattr(captum, ref_cls)(model).attribute(x, target=t)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_integrated_gradients_equal_captum(model, batch):
    x, t = batch
    ours = IntegratedGradients(model, steps=16).attribute(x, t)
    ref = captum.IntegratedGradients(model).attribute(x, target=t, n_steps=16, method="gausslegendre")
    assert torch.allclose(ours, ref, atol=1e-5)
    gray = x.mean(1, keepdim=True).expand_as(x)
    ours = IntegratedGradients(model, steps=16).attribute(x, t, baselines=gray)
    ref = captum.IntegratedGradients(model).attribute(x, baselines=gray, target=t, n_steps=16)
    assert torch.allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize(
    "cls", [GradCAM, GradCAMpp, LayerCAM, Saliency, InputXGradient, SmoothGrad, IntegratedGradients]
)
def test_batched_equals_per_image(model, batch, cls):
    x, t = batch
    m = cls(model)
    full = m.attribute(x, t)
    single = (
        torch.cat([m.attribute(x[i : i + 1], t[i : i + 1]) for i in range(len(x))]) if cls is not SmoothGrad else None
    )
    if single is not None:
        assert torch.allclose(full, single, atol=1e-5)
    assert full.shape[0] == len(x) and torch.isfinite(full).all()


def test_degenerate_detection():
    maps = torch.zeros(3, 7, 7)
    maps[1] = 0.5  # constant
    maps[2, 3, 3] = 1.0  # peaked
    assert degenerate(maps).tolist() == [True, True, False]


def test_concentration_and_foreground_on_hand_made_maps():
    maps = torch.zeros(2, 10, 10)
    maps[0, 0, :5] = 1.0  # 5 equal pixels: 80% of the mass needs 4 pixels
    maps[1] = 1.0  # uniform: 80 of 100 pixels
    cr = concentration_ratio(maps)
    assert cr.tolist() == pytest.approx([0.04, 0.80])
    gray = torch.zeros(2, 10, 10)
    gray[:, 0, :5] = 1.0
    assert foreground_mass(maps, gray, 0.5).tolist() == pytest.approx([1.0, 0.05])


def test_class_contrast_and_spearman():
    a = torch.rand(4, 7, 7)
    assert class_contrast(a, a).abs().max() < 1e-6
    assert spearman(a, a).tolist() == pytest.approx([1.0] * 4)
    assert spearman(a, -a).tolist() == pytest.approx([-1.0] * 4)


def test_differentiable_gradcam_matches_finite_differences():
    torch.manual_seed(0)
    model = build("two_conv", width=4).double().eval()
    x = torch.rand(2, 3, 28, 28, dtype=torch.float64)
    cam = GradCAM(model)
    w = model.conv2[1].weight

    def objective():
        c, _ = cam.raw(x, torch.tensor([1, 2]), create_graph=True)
        return (c.double() ** 2).sum()

    (g,) = torch.autograd.grad(objective(), w)
    idx = (1, 2, 0, 1)
    h = 1e-6
    with torch.no_grad():
        w[idx] += h
    up = objective().item()
    with torch.no_grad():
        w[idx] -= 2 * h
    down = objective().item()
    with torch.no_grad():
        w[idx] += h
    assert g[idx].item() == pytest.approx((up - down) / (2 * h), rel=1e-4, abs=1e-8)


def test_gradcam_on_a_frozen_model(batch):
    x, t = batch
    torch.manual_seed(0)
    m = build("convnet", context=2).eval()
    ref = GradCAM(m).attribute(x, t)
    for p in m.parameters():
        p.requires_grad_(False)
    assert torch.allclose(GradCAM(m).attribute(x, t), ref)


def test_integrated_gradients_completeness_gap_shrinks_with_nodes(model, batch):
    """Completeness: attributions sum to f(x) - f(0) for the target logit, up to the quadrature's error, which
    Gauss-Legendre nodes shrink (scripts/recheck_ig_completeness.py measures it on the trained models)."""
    x, t = batch
    with torch.no_grad():
        delta = (model(x) - model(torch.zeros_like(x))).gather(1, t[:, None]).squeeze(1)

    def gap(steps):
        total = IntegratedGradients(model, steps=steps).attribute(x, t).flatten(1).sum(1)
        return ((total - delta).abs() / delta.abs()).median()

    assert gap(64) < 0.01
    assert gap(64) < gap(2)


def test_completeness_gap_is_zero_for_exact_ig_and_one_for_an_empty_map():
    from shortcutlab.attribution import to_map
    from shortcutlab.explain import completeness_gap
    from shortcutlab.runtime import Runtime

    torch.manual_seed(0)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 28 * 28, 10)).eval()
    x, t = torch.rand(5, 3, 28, 28), torch.tensor([0, 1, 2, 3, 4])
    rt = Runtime(torch.device("cpu"), bf16=False)
    maps = to_map(IntegratedGradients(linear, steps=2).attribute(x, t)).detach()  # exact on a linear model
    assert completeness_gap(linear, x, maps, t, rt).max() < 1e-4
    assert torch.allclose(completeness_gap(linear, x, torch.zeros_like(maps), t, rt), torch.ones(5))


def _deletion_insertion_every_point(model, x, maps, target, rt, steps):
    """The curves with every point computed (the two ends too): the reference for the shared-ends version."""
    from shortcutlab.trust import _target_prob

    n, _, h, w = x.shape
    rank = torch.empty_like(order := maps.flatten(1).argsort(1, descending=True))
    rank.scatter_(1, order, torch.arange(h * w).expand(n, -1))
    fracs = torch.linspace(0, 1, steps + 1)
    kept = (rank.unsqueeze(0) >= (fracs * h * w).view(-1, 1, 1)).view(steps + 1, n, 1, h, w).float()
    t = target.repeat(steps + 1)
    curves = [
        _target_prob(model, (x.unsqueeze(0) * k).reshape(-1, 3, h, w), t, rt).view(steps + 1, n)
        for k in (kept, 1 - kept)
    ]
    return [torch.trapezoid(c, dx=1 / steps, dim=0) for c in curves]


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_deletion_insertion_shared_ends_equal_every_point_computed(model, batch, precision):
    from shortcutlab.params import Compute
    from shortcutlab.runtime import resolve
    from shortcutlab.trust import deletion_insertion, endpoints, falsification

    rt = resolve(Compute(device="cpu", precision=precision, threads=0))
    x, y = batch
    maps = torch.rand(len(x), 28, 28, generator=torch.Generator().manual_seed(2))
    with rt.autocast():
        ref = _deletion_insertion_every_point(model, x, maps, y, rt, 5)
        ends = endpoints(model, x, y, rt)
        shared = deletion_insertion(model, x, maps, y, rt, 5, ends)
        assert all(torch.equal(a, b) for a, b in zip(shared, deletion_insertion(model, x, maps, y, rt, 5), strict=True))
        # the same curves; batches of other sizes may round an fp32 matmul differently in the last bit
        assert all(torch.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(shared, ref, strict=True))
        fals = falsification(model, x, maps, y, rt)
        assert torch.equal(fals, falsification(model, x, maps, y, rt, p0=ends[0]))
