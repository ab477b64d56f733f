"""Architectures and the one model registry.

Every checkpoint is a plain dict ``{"arch", "arch_kwargs", "state_dict", "meta"}`` so any stage can rebuild
any trained model by name with :func:`load_model` (weights only, never a pickled module).
Each architecture names its Grad-CAM layer (``cam_layer``: a module whose output is a spatial map) and its
hidden layer (``hidden_layer``: a module whose output is a flat feature vector, for neurons and SAEs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .io import load_state, save_state


class LazyCNN(nn.Module):
    """The study's lazy model: one 3x3 conv, a 2x2 average pool, a small MLP. Learns color."""

    cam_layer = "color_mixer"
    hidden_layer = "classifier.2"

    def __init__(self, width: int = 16, hidden: int = 64):
        super().__init__()
        self.color_mixer = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.global_pool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(width * 4, hidden), nn.ReLU(),
                                        nn.Linear(hidden, 10))

    def forward(self, x):
        return self.classifier(self.global_pool(self.color_mixer(x)))

    def logits_from_hidden(self, h):
        """The computation after ``hidden_layer``: hidden activations (N, 64) -> logits."""
        return self.classifier[3](h)


class TwoConvCNN(nn.Module):
    """The study's small network for consistency/focal/suppression: conv 3->32, conv 32->32 with 2x2
    max-pooling after each (a 7x7 map), global average pool, linear 32->10."""

    cam_layer = "conv2"
    hidden_layer = "pool"

    def __init__(self, width: int = 32, channel_scale: list[float] | None = None):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.conv2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.pool = nn.Sequential(nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(width, 10)
        if channel_scale is not None:
            # neuron suppression: a forward hook scales conv2's channels (part of the model, train and test)
            if len(channel_scale) != width:
                raise ValueError(f"channel_scale has {len(channel_scale)} entries, conv2 has {width} channels")
            self.register_buffer("channel_scale", torch.tensor(channel_scale, dtype=torch.float32))
            self.conv2.register_forward_hook(lambda m, i, o: o * self.channel_scale.to(o.dtype)[:, None, None])

    def forward(self, x):
        return self.fc(self.pool(self.conv2(self.conv1(x))))

    def logits_from_hidden(self, h):
        return self.fc(h)


class ShapeCNN(nn.Module):
    """The study's shape-biased network: conv 3->32, 32->64, maxpool, 64->64, 64->128, maxpool,
    128->128, global average pool, linear 128->10 (``width`` scales every layer)."""

    cam_layer = "block3"
    hidden_layer = "pool"

    def __init__(self, width: float = 1.0):
        super().__init__()
        c = [max(1, round(v * width)) for v in (32, 64, 64, 128, 128)]

        def conv(i, o):
            return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU()]

        self.block1 = nn.Sequential(*conv(3, c[0]), *conv(c[0], c[1]), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(*conv(c[1], c[2]), *conv(c[2], c[3]), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(*conv(c[3], c[4]))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c[4], 10)

    def forward(self, x):
        return self.fc(self.pool(self.block3(self.block2(self.block1(x)))))

    def logits_from_hidden(self, h):
        return self.fc(h)


def _cbr(i, o, dilation=1):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(o), nn.ReLU())


class ConvNet(nn.Module):
    """The debiasing workhorse: three conv-BN-ReLU blocks (28->14->7), optional dilated 7x7 context
    convs (to widen the last map's receptive field), global average pool, linear."""

    cam_layer = "head"
    hidden_layer = "pool"

    def __init__(self, widths: tuple[int, ...] | list[int] = (16, 32, 64), context: int = 0):
        super().__init__()
        w1, w2, w3 = widths
        self.stem = _cbr(3, w1)
        self.layer2 = nn.Sequential(nn.MaxPool2d(2), _cbr(w1, w2))
        self.layer3 = nn.Sequential(nn.MaxPool2d(2), _cbr(w2, w3))
        self.head = nn.Sequential(*[_cbr(w3, w3, dilation=d) for d in (2, 3)[:context]]) \
            if context else nn.Identity()
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(w3, 10)
        if not context:
            self.cam_layer = "layer3"

    def forward(self, x):
        return self.fc(self.pool(self.head(self.layer3(self.layer2(self.stem(x))))))

    def logits_from_hidden(self, h):
        return self.fc(h)


class ColorNet(nn.Module):
    """A color-only network (1x1 convolutions, no spatial context): the biased model for ReBias."""

    cam_layer = "features"
    hidden_layer = "pool"

    def __init__(self, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 1), nn.ReLU(), nn.Conv2d(width, width, 1), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(width, 10)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)))

    def logits_from_hidden(self, h):
        return self.fc(h)


REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "lazy": LazyCNN,
    "two_conv": TwoConvCNN,
    "shape_cnn": ShapeCNN,
    "convnet": ConvNet,
    "color_net": ColorNet,
}


def build(arch: str, **kwargs) -> nn.Module:
    if arch not in REGISTRY:
        raise KeyError(f"unknown architecture {arch!r} (known: {', '.join(REGISTRY)})")
    return REGISTRY[arch](**kwargs)


def get_module(model: nn.Module, path: str) -> nn.Module:
    m = model
    for part in path.split("."):
        m = m[int(part)] if part.isdigit() else getattr(m, part)
    return m


@contextlib.contextmanager
def capture(model: nn.Module, layer: str | nn.Module, pre: bool = False):
    """Record what ``layer`` (a path like ``"classifier.2"`` or a module) outputs during forward passes (with
    ``pre``: its input, i.e. a ReLU's pre-activation). Yields a dict whose ``"a"`` holds the latest value,
    graph attached; the hook is removed on exit. The one forward-hook helper of the project."""
    module = get_module(model, layer) if isinstance(layer, str) else layer
    box: dict = {}
    h = module.register_forward_hook(lambda m, i, o: box.__setitem__("a", i[0] if pre else o))
    try:
        yield box
    finally:
        h.remove()


@torch.no_grad()
def unit_responses(model: nn.Module, layer: str | nn.Module, x: torch.Tensor, pre: bool = False) -> torch.Tensor:
    """(N, units) float32 responses of ``layer`` to images x (spatial mean for conv maps), in eval mode."""
    was = model.training
    model.eval()
    try:
        with capture(model, layer, pre) as box:
            model(x)
    finally:
        model.train(was)
    a = box["a"].float()
    return a.mean((2, 3)) if a.dim() == 4 else a


def save_model(path: str | Path, model: nn.Module, arch: str, arch_kwargs: dict, meta: dict | None = None):
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_state(path, {"arch": arch, "arch_kwargs": dict(arch_kwargs), "state_dict": state,
                      "meta": dict(meta or {})})


def checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or a directory of per-seed checkpoints (``seed<k>.pt``: the lowest seed is used)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("seed*.pt"), key=lambda p: int(p.stem[4:]))
        if not files:
            raise FileNotFoundError(f"{path}: no seed*.pt checkpoints (run dvc repro)")
        return files[0]
    return path


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    path = checkpoint_path(path)
    ckpt = load_state(path)
    for key in ("arch", "arch_kwargs", "state_dict"):
        if key not in ckpt:
            raise ValueError(f"{path}: not a shortcut-lab checkpoint (no {key!r})")
    model = build(ckpt["arch"], **ckpt["arch_kwargs"])
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    return model, ckpt
