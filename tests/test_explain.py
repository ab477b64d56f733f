import torch
from conftest import PARAMS
from torch import nn

from shortcutlab.models import build
from shortcutlab.neurons import invariance, maximise_units, neuron_deep_dive, seed_consistency, unit_responses


class MeanColor(nn.Module):
    """hidden unit k = mean of input channel k (k < 3): GAP makes it position-invariant, linear in intensity."""

    hidden_layer = "pool"

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3)[:, :, None, None])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(3, 10)

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)))


def test_unit_responses_and_invariance_on_a_known_model():
    m = MeanColor()
    pal = torch.tensor(PARAMS["dataset"]["palette"])
    r = unit_responses(m, m.pool, pal[:, :, None, None].expand(10, 3, 28, 28))
    assert torch.allclose(r, pal, atol=1e-6)
    fav = r.argmax(0)
    inv = invariance(m, m.pool, pal, fav, pre=False)
    s = torch.tensor([0.25, 0.5, 0.75, 1.0])
    assert abs(inv["intensity_cv_mean"] - float(s.std() / s.mean())) < 1e-4  # response linear in intensity
    assert inv["spatial_cv_mean"] < 1e-5  # same patch anywhere -> same mean


def test_seed_consistency_is_one_for_identical_and_low_for_independent_images():
    a = torch.rand(2, 5, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    same = torch.stack([a[0], a[0]])
    assert torch.allclose(seed_consistency(same), torch.ones(5))
    assert seed_consistency(a).abs().max() < 0.1


def test_activation_maximisation_raises_the_unit_and_deep_dive_runs():
    m = MeanColor()
    imgs = maximise_units(m, m.pool, 3, [0, 1], steps=30)
    assert imgs.shape == (2, 3, 3, 28, 28) and imgs.min() >= 0 and imgs.max() <= 1
    start = 0.5  # the uniform [0.25, 0.75] starts have mean 0.5 in every channel
    for k in range(3):
        assert imgs[:, k, k].mean() > start + 0.2  # unit k = channel k was pushed up
    torch.manual_seed(0)
    lazy = build("lazy").eval()
    metrics, arrays = neuron_deep_dive(lazy, torch.tensor(PARAMS["dataset"]["palette"]), steps=5)
    assert metrics["first_layer"]["filters"] == 16 and metrics["hidden"]["units"] == 64
    assert arrays["first_responses"].shape == (10, 16) and arrays["hidden_responses"].shape == (10, 64)
    assert arrays["hidden_actmax"].shape == (64, 3, 28, 28)
