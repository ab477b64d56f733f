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
