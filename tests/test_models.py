import pytest
import torch

from shortcutlab.models import REGISTRY, build, get_module


@pytest.mark.parametrize("arch", sorted(REGISTRY))
def test_shapes_and_layers(arch):
    torch.manual_seed(0)
    m = build(arch).eval()
    x = torch.rand(4, 3, 28, 28)
    assert m(x).shape == (4, 10)
    feats = {}
    get_module(m, m.hidden_layer).register_forward_hook(lambda mod, i, o: feats.setdefault("hid", o))
    if not hasattr(m, "cam_layer"):  # the LfF protocol's MLP: no spatial map, never explained or attacked
        m(x)
        assert arch == "mlp" and feats["hid"].shape == (4, 100)
        return
    get_module(m, m.cam_layer).register_forward_hook(lambda mod, i, o: feats.setdefault("cam", o))
    m(x)
    # a conv map (N, C, h, w), or a transformer's tokens (N, 1 + h*w, D) that Grad-CAM puts on their grid
    assert feats["cam"].dim() == 4 or (feats["cam"].dim() == 3 and feats["cam"].shape[1] == 50)
    assert feats["cam"].shape[0] == 4
    assert feats["hid"].dim() == 2 and feats["hid"].shape[0] == 4


def test_lazy_cnn_is_the_studys():
    m = build("lazy")
    convs = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d)]
    lins = [x for x in m.modules() if isinstance(x, torch.nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(3, 16, (3, 3))]
    assert [(lin.in_features, lin.out_features) for lin in lins] == [(64, 64), (64, 10)]


def test_unknown_arch():
    with pytest.raises(KeyError, match="unknown architecture"):
        build("resnet9000")


def test_color_net_sparse_path_is_the_same_function():
    """On black-background digits (the LfF protocol) the color net sums only the nonzero pixels: same
    outputs, same hooked hidden features and same gradients as the dense 1x1 convolutions, in float64."""
    torch.manual_seed(0)
    g = build("color_net").double()
    stroke = torch.rand(16, 1, 28, 28) < 0.2
    x = (torch.rand(16, 3, 1, 1) * torch.rand(16, 1, 28, 28) * stroke).double()
    x[0] = 0  # an all-black image
    hid = {}
    hook = get_module(g, g.hidden_layer).register_forward_hook(lambda mod, i, o: hid.update(h=o))
    sparse = g(x)
    hook.remove()
    dense = g.fc(g.pool(g.features(x)))
    assert torch.allclose(sparse, dense, rtol=0, atol=1e-12)
    assert torch.allclose(hid["h"], g.pool(g.features(x)), rtol=0, atol=1e-12)
    for a, b in zip(
        torch.autograd.grad(sparse.sum(), list(g.parameters())),
        torch.autograd.grad(dense.sum(), list(g.parameters())),
        strict=True,
    ):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
    # a dense input (our dataset's noisy backgrounds) takes the convolutions: bit-identical to before
    y = torch.rand(4, 3, 28, 28).double()
    assert torch.equal(g(y), g.fc(g.pool(g.features(y))))
