"""Architectures and the one model registry. Every checkpoint is a plain dict ``{"arch", "arch_kwargs",
"state_dict", "meta"}`` so any stage can rebuild any trained model by name with :func:`load_model` (weights only,
never a pickled module). Each architecture names its Grad-CAM layer (``cam_layer``: a module whose output is a
spatial map) and its hidden layer (``hidden_layer``: a module whose output is a flat feature vector)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .fused import bn_relu, bn_relu_pool, grad_channels_last, plain, relu_avg_pool, relu_pool
from .io import ArtifactError, load_state, recovery, save_state


class LazyCNN(nn.Module):
    """The study's lazy model: one 3x3 conv, a 2x2 average pool, a small MLP. Learns color."""

    cam_layer = "color_mixer"
    hidden_layer = "classifier.2"

    def __init__(self, width: int = 16, hidden: int = 64):
        super().__init__()
        self.color_mixer = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.global_pool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(width * 4, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        if plain(self, calls=("classifier",)):  # the same bits through the fused ReLU + average-pool kernel
            return self.classifier(relu_avg_pool(self.color_mixer[0](x), 2))
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
        self._own = ()  # the model's own forward hooks, which its fused path applies itself (fused.plain)
        if channel_scale is not None:
            # neuron suppression: a forward hook scales conv2's channels (part of the model, train and test);
            # relu(y) * s is relu(y * s) bit for bit when s > 0, so the fused path scales before its ReLU + pool
            if len(channel_scale) != width:
                raise ValueError(f"channel_scale has {len(channel_scale)} entries, conv2 has {width} channels")
            self.register_buffer("channel_scale", torch.tensor(channel_scale, dtype=torch.float32))
            self.conv2.register_forward_hook(self._suppress)
            self._own = (self._suppress,) if min(channel_scale) > 0 else ()

    def _suppress(self, module, inputs, y):
        return y * self.channel_scale.to(y.dtype)[:, None, None]

    def forward(self, x):
        if plain(self, self._own):  # the same bits through the fused ReLU + max-pool kernel (fused.py)
            y = self.conv2[1](relu_pool(self.conv1[0](x)))
            y = self._suppress(None, None, y) if self._own else y
            return self.fc(self.pool[2](self.pool[1](relu_pool(y))))
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
        if plain(self, calls=("block3", "pool", "fc")):  # the same bits through the fused ReLU + max-pool kernel
            for b in (self.block1, self.block2):
                x = relu_pool(b[2](b[1](b[0](x))))
            return self.fc(self.pool(self.block3(x)))
        return self.fc(self.pool(self.block3(self.block2(self.block1(x)))))

    def logits_from_hidden(self, h):
        return self.fc(h)


def _cbr(i, o, dilation=1):
    return nn.Sequential(
        nn.Conv2d(i, o, 3, padding=dilation, dilation=dilation, bias=False), nn.BatchNorm2d(o), nn.ReLU()
    )


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
        self.head = nn.Sequential(*[_cbr(w3, w3, dilation=d) for d in (2, 3)[:context]]) if context else nn.Identity()
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(w3, 10)
        if not context:
            self.cam_layer = "layer3"

    def forward(self, x):
        if plain(self, calls=("pool", "fc")):  # the same bits through the BatchNorm + ReLU (+ max-pool) kernel
            for i, cbr in enumerate((self.stem, self.layer2[1], self.layer3[1], *self.head.children())):
                x = (bn_relu_pool if i < 2 else bn_relu)(cbr[0](x), cbr[1])
            return self.fc(self.pool(grad_channels_last(x, self)))
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
        if x.dim() == 4:
            px = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
            keep = px.ne(0).any(1)
            if 2 * int(keep.sum()) <= len(keep):
                return self.fc(self.pool(self._sparse_mean(px, keep, x.shape)))
        return self.fc(self.pool(self.features(x)))

    def _sparse_mean(self, px: torch.Tensor, keep: torch.Tensor, shape) -> torch.Tensor:
        """The same function as ``features`` then the spatial mean, computed on the nonzero pixels only: a
        1x1-conv net maps every all-zero pixel to one vector, so the mean is (sum over nonzero pixels +
        n_zero * features(0)) / (h * w). Taken when at least half the pixels are zero (the LfF protocol's
        black backgrounds: about 5x fewer pixels); returns (N, C, 1, 1) so ``pool`` and its hooks still run."""
        n, _, h, w = shape
        img = torch.arange(n, device=px.device).repeat_interleave(h * w)[keep]
        feats = torch.cat([px[keep], px.new_zeros(1, px.shape[1])])
        for layer in self.features:  # a 1x1 conv on a pixel is a linear map
            feats = (
                F.linear(feats, layer.weight.flatten(1), layer.bias) if isinstance(layer, nn.Conv2d) else layer(feats)
            )
        feats = feats.float() if feats.dtype in (torch.bfloat16, torch.float16) else feats
        total = feats.new_zeros(n, feats.shape[1]).index_add(0, img, feats[:-1])
        n_zero = (h * w - torch.bincount(img, minlength=n)).to(feats.dtype)  # fp32 sums under autocast too
        return ((total + n_zero[:, None] * feats[-1]) / (h * w))[:, :, None, None]

    def logits_from_hidden(self, h):
        return self.fc(h)


class AttentionPool(nn.Module):
    """Attention pooling: features (N,C,h,w) weighted by attention (N,h*w) summed over positions -> (N,C)."""

    def forward(self, f, a):
        return torch.einsum("ncp,np->nc", f.flatten(2), a.to(f.dtype))


class AttentionCNN(nn.Module):
    """The study's two-conv network with a spatial attention layer after the second conv: conv 3->w,
    2x2 max-pool, conv w->w, 2x2 max-pool (a 7x7 map), a 1x1 conv scoring each position, softmax over the
    49 positions, features re-weighted by the attention and summed (attention pooling), linear w->10.
    ``attention_layer`` outputs the (N, 49) attention weights; they sum to one per image."""

    cam_layer = "conv2"
    hidden_layer = "pool"
    attention_layer = "attention"

    def __init__(self, width: int = 32):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.conv2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.score = nn.Conv2d(width, 1, 1)
        self.attention = nn.Sequential(nn.Flatten(), nn.Softmax(dim=1))
        self.pool = AttentionPool()
        self.fc = nn.Linear(width, 10)

    def forward(self, x):
        fused = plain(self, calls=("score", "attention", "pool", "fc"))  # the fused ReLU + max-pool kernel's bits
        f = relu_pool(self.conv2[1](relu_pool(self.conv1[0](x)))) if fused else self.conv2(self.conv1(x))
        a = self.attention(self.score(f).float())
        return self.fc(self.pool(grad_channels_last(f, self), a))

    def logits_from_hidden(self, h):
        return self.fc(h)


class SelfAttention(nn.Module):
    """Multi-head self-attention with the attention probabilities computed explicitly and passed through
    ``probs`` (an identity module: the hook point for attention maps and rollout), shape (N, heads, T, T)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.probs = nn.Identity()
        self.proj = nn.Linear(dim, dim)

    fold_scale = True  # the tests set it False to compare with the unfolded expression

    def forward(self, x):
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scale = (d // self.heads) ** -0.5
        if self.fold_scale and math.frexp(scale)[0] == 0.5:  # a power of two (head dim 4, 16, 64): scaling q
            # first is exact, so the same bits forward and backward as scaling the fp32 scores, 3x fewer bytes
            a = self.probs(torch.softmax(((q * scale) @ k.transpose(-2, -1)).float(), -1))
        else:
            a = self.probs(torch.softmax((q @ k.transpose(-2, -1)).float() * scale, -1))
        return self.proj((a.to(v.dtype) @ v).transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, heads: int, mlp: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """A tiny vision transformer: 4x4 patches -> 7x7 = 49 tokens + a class token, learned position
    embeddings, ``depth`` pre-norm blocks, a final LayerNorm; the head reads the class token only.

    Hook points: ``cam_layer`` = the last block's ``norm1`` (its input tokens, the usual Grad-CAM layer for
    ViTs); ``final_tokens_layer`` = the last block's output tokens (the head never reads its patch tokens,
    so their gradients are exactly zero: the frozen-CLIP situation); ``attention_probs`` = every block's
    attention probabilities (rollout); ``hidden_layer`` = the normalised class token fed to the head."""

    hidden_layer = "pre_logits"

    def __init__(self, patch: int = 4, dim: int = 64, depth: int = 3, heads: int = 4, mlp: int = 128):
        super().__init__()
        if 28 % patch:
            raise ValueError(f"patch {patch} does not divide the 28-pixel image")
        self.grid = 28 // patch
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + self.grid**2, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.pre_logits = nn.Identity()
        self.head = nn.Linear(dim, 10)
        self.cam_layer = f"blocks.{depth - 1}.norm1"
        self.final_tokens_layer = f"blocks.{depth - 1}"
        self.attention_probs = [f"blocks.{i}.attn.probs" for i in range(depth)]

    def features(self, x):
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(len(t), -1, -1).to(t.dtype), t], 1) + self.pos_embed.to(t.dtype)
        for b in self.blocks:
            t = b(t)
        return self.pre_logits(self.norm(t)[:, 0])

    def forward(self, x):
        return self.head(self.features(x))

    def logits_from_hidden(self, h):
        return self.head(h)


class MLP(nn.Module):
    """The LfF Colored-MNIST protocol's network: flatten 3x28x28 -> 100 -> 100 -> 100 (ReLU) -> 10.
    ``input_scale`` multiplies the input first: 1/255 reproduces both public reference codebases, whose
    MLP divides by 255 images that ToTensor already scaled to [0, 1] (inputs in [0, 1/255])."""

    hidden_layer = "feature"

    def __init__(self, hidden: int = 100, depth: int = 3, input_scale: float = 1.0):
        super().__init__()
        layers, width = [], 3 * 28 * 28
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.input_scale = input_scale
        self.feature = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, 10)

    def forward(self, x):
        return self.classifier(self.feature(x.flatten(1) * self.input_scale))

    def logits_from_hidden(self, h):
        return self.classifier(h)


REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "lazy": LazyCNN,
    "two_conv": TwoConvCNN,
    "shape_cnn": ShapeCNN,
    "convnet": ConvNet,
    "color_net": ColorNet,
    "attention": AttentionCNN,
    "vit": TinyViT,
    "mlp": MLP,
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


def save_model(path: str | Path, model: nn.Module, arch: str, arch_kwargs: dict, meta: dict | None = None):
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_state(path, {"arch": arch, "arch_kwargs": dict(arch_kwargs), "state_dict": state, "meta": dict(meta or {})})


def checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or a directory of per-seed checkpoints (``seed<k>.pt``: the lowest seed is used)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("seed*.pt"), key=lambda p: int(p.stem[4:]))
        if not files:
            raise ArtifactError(f"{path}: no seed*.pt checkpoints (run the stage that produces it: dvc repro)")
        return files[0]
    return path


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    path = checkpoint_path(path)
    ckpt = load_state(path)
    for key in ("arch", "arch_kwargs", "state_dict"):
        if key not in ckpt:
            raise ArtifactError(f"{path}: not a shortcut-lab checkpoint (no {key!r}); {recovery(path)}")
    try:
        model = build(ckpt["arch"], **ckpt["arch_kwargs"])
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise ArtifactError(
            f"{path}: its weights do not fit architecture {ckpt['arch']!r} ({str(e).splitlines()[0]}); {recovery(path)}"
        ) from e
    model.to(device).eval()
    return model, ckpt
