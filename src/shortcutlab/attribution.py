"""Attribution methods with one calling convention (Captum-like): ``method.attribute(x, target=...)``.

- CAM family (:class:`GradCAM`, :class:`GradCAMpp`, :class:`LayerCAM`) hook a layer, take gradients with
  ``torch.autograd.grad`` (one backward for the whole batch, a per-sample target) and return (N, H, W)
  maps upsampled bilinearly to the input size (``upsample=False`` keeps the layer's grid).
  :class:`GradCAM` has a differentiable mode (``create_graph=True``: graph kept, nothing detached, pre-ReLU
  map available through :meth:`GradCAM.raw`) for training losses such as the explanation backdoor.
  On a transformer's tokens (N, 1 + h*w, D) the class token is dropped and the patch tokens form the grid.
- Input-gradient family (:class:`Saliency`, :class:`InputXGradient`, :class:`SmoothGrad`,
  :class:`IntegratedGradients`) return (N, C, H, W); :func:`to_map` reduces any attribution to (N, H, W).
- Attention family, for models that have attention: :class:`AttentionMap` (the attention weights
  themselves; class-independent), :class:`AttentionRollout` (Abnar & Zuidema, 2020; class-independent) and
  :class:`GradRollout` (gradient-weighted rollout, Chefer et al., 2021). ``Method.supports(model)`` says
  whether a method applies to a model; :func:`applicable` filters a list of names.

No method ever substitutes a map: a zero or uniform map is returned as it is, and ``trust.py`` reports it.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models import capture


def _targets(target, n, device) -> torch.Tensor:
    if isinstance(target, int):
        return torch.full((n,), target, dtype=torch.long, device=device)
    return torch.as_tensor(target, device=device).long().reshape(n)


def tokens_to_grid(t: torch.Tensor) -> torch.Tensor:
    """Transformer tokens (N, 1 + h*w, D) -> (N, D, h, w): the class token (first) is dropped."""
    n, length, d = t.shape
    s = round((length - 1) ** 0.5)
    if s * s != length - 1:
        raise ValueError(f"{length} tokens are not a class token plus a square grid of patches")
    return t[:, 1:].transpose(1, 2).reshape(n, d, s, s)


def _upsample(maps: torch.Tensor, size) -> torch.Tensor:
    if maps.shape[-2:] == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def to_map(attr: torch.Tensor) -> torch.Tensor:
    """(N,C,H,W) -> (N,H,W) by summing channels; (N,H,W) passes through."""
    return attr.sum(1) if attr.dim() == 4 else attr


class Attribution(ABC):
    name = "attribution"
    spatial_only = False  # True for maps defined on a layer grid (CAMs)

    def __init__(self, model: nn.Module):
        self.model = model

    @classmethod
    def supports(cls, model: nn.Module) -> bool:
        """Whether this method applies to ``model`` (the attention family needs attention layers)."""
        return True

    @abstractmethod
    def attribute(self, inputs: torch.Tensor, target) -> torch.Tensor:
        """Attributions for ``inputs`` w.r.t. the logit of ``target`` (an int or one class per input)."""

    def _input_grad(self, x: torch.Tensor, target: torch.Tensor, create_graph: bool = False):
        x = x.detach().requires_grad_(True)
        logits = self.model(x)
        score = logits.float().gather(1, target[:, None]).sum()
        (g,) = torch.autograd.grad(score, x, create_graph=create_graph)
        return g, logits


# ------------------------------------------------------------------------------------------ CAM family
class GradCAM(Attribution):
    name = "gradcam"
    spatial_only = True

    def __init__(self, model: nn.Module, layer: str | None = None, upsample: bool = True):
        super().__init__(model)
        self.layer, self.upsample = layer, upsample

    def raw(self, inputs: torch.Tensor, target, create_graph: bool = False):
        """Pre-ReLU Grad-CAM on the layer grid (N,h,w) and the logits. With ``create_graph=True`` the map
        is differentiable w.r.t. the parameters (for training losses); gradients flow only through it."""
        t = _targets(target, len(inputs), inputs.device)
        if not create_graph and not inputs.requires_grad:
            inputs = inputs.detach().requires_grad_(True)  # so a frozen model (no parameter grads) has a graph
        with capture(self.model, self.layer or self.model.cam_layer) as box:
            logits = self.model(inputs)
        act = box["a"]
        score = logits.float().gather(1, t[:, None]).sum()
        (g,) = torch.autograd.grad(score, act, create_graph=create_graph, retain_graph=create_graph)
        if not create_graph:
            act = act.detach()
        if act.dim() == 3:  # transformer tokens: the patch tokens on their grid
            act, g = tokens_to_grid(act), tokens_to_grid(g)
        cam = self._combine(act.float(), g.float())
        return cam, logits

    @staticmethod
    def _combine(act, g):
        return (g.mean((2, 3), keepdim=True) * act).sum(1)

    def attribute(self, inputs: torch.Tensor, target, create_graph: bool = False, relu: bool = True):
        cam, _ = self.raw(inputs, target, create_graph)
        if relu:
            cam = F.relu(cam)
        return _upsample(cam, inputs.shape[-2:]) if self.upsample else cam


class GradCAMFinalTokens(GradCAM):
    """Grad-CAM on a transformer's last-block output tokens (``model.final_tokens_layer``): the layer the
    study used on a frozen CLIP ViT. A head that reads only the class token gives these patch tokens zero
    gradient, so the map is all-zero; it is returned as it is and counted as degenerate."""

    name = "gradcam_final_tokens"

    def __init__(self, model: nn.Module, upsample: bool = True):
        super().__init__(model, layer=model.final_tokens_layer, upsample=upsample)

    @classmethod
    def supports(cls, model):
        return hasattr(model, "final_tokens_layer")


class GradCAMpp(GradCAM):
    """Grad-CAM++ (Chattopadhay et al., 2018), with the usual exponential-score closed form."""

    name = "gradcampp"

    @staticmethod
    def _combine(act, g):
        g2, g3 = g.pow(2), g.pow(3)
        denom = 2 * g2 + act.sum((2, 3), keepdim=True) * g3
        alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
        w = (alpha * F.relu(g)).sum((2, 3), keepdim=True)
        return (w * act).sum(1)


class LayerCAM(GradCAM):
    """Layer-CAM (Jiang et al., 2021): element-wise positive gradients times activations."""

    name = "layercam"

    @staticmethod
    def _combine(act, g):
        return (F.relu(g) * act).sum(1)


# ------------------------------------------------------------------------------------------ input gradients
class Saliency(Attribution):
    """|d score / d x| (Simonyan et al., 2014), like Captum's Saliency(abs=True)."""

    name = "saliency"

    def attribute(self, inputs, target):
        g, _ = self._input_grad(inputs, _targets(target, len(inputs), inputs.device))
        return g.abs()


class InputXGradient(Attribution):
    name = "input_x_gradient"

    def attribute(self, inputs, target):
        g, _ = self._input_grad(inputs, _targets(target, len(inputs), inputs.device))
        return inputs.detach() * g


class SmoothGrad(Attribution):
    """Mean |gradient| over ``samples`` noisy copies (noise std ``sigma``), like NoiseTunnel(Saliency)."""

    name = "smoothgrad"

    def __init__(self, model, samples: int = 8, sigma: float = 0.1, seed: int = 0):
        super().__init__(model)
        self.samples, self.sigma, self.seed = samples, sigma, seed

    def attribute(self, inputs, target):
        n = len(inputs)
        t = _targets(target, n, inputs.device).repeat(self.samples)
        gen = torch.Generator().manual_seed(self.seed)
        noise = torch.randn((self.samples, *inputs.shape), generator=gen).to(inputs.device) * self.sigma
        x = (inputs.unsqueeze(0) + noise).reshape(-1, *inputs.shape[1:])
        g, _ = self._input_grad(x, t)
        return g.abs().reshape(self.samples, *inputs.shape).mean(0)


class IntegratedGradients(Attribution):
    """Integrated Gradients (Sundararajan et al., 2017), Gauss-Legendre nodes like Captum's default,
    batched over images x steps. ``baselines``: None (black) or a tensor like the inputs."""

    name = "integrated_gradients"

    def __init__(self, model, steps: int = 16, chunk: int = 512):
        super().__init__(model)
        self.steps, self.chunk = steps, chunk
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        self.alphas = torch.tensor(0.5 * (nodes + 1), dtype=torch.float32)
        self.weights = torch.tensor(0.5 * weights, dtype=torch.float32)

    def attribute(self, inputs, target, baselines: torch.Tensor | None = None):
        n = len(inputs)
        base = torch.zeros_like(inputs) if baselines is None else baselines.to(inputs)
        t = _targets(target, n, inputs.device)
        a = self.alphas.to(inputs.device)
        diff = (inputs - base).detach()
        path = (base.unsqueeze(0) + a.view(-1, 1, 1, 1, 1) * diff.unsqueeze(0)).reshape(-1, *inputs.shape[1:])
        tt = t.repeat(self.steps)
        grads = torch.cat(
            [
                self._input_grad(path[s : s + self.chunk], tt[s : s + self.chunk])[0]
                for s in range(0, len(path), self.chunk)
            ]
        )
        grads = grads.reshape(self.steps, *inputs.shape)
        return diff * (self.weights.to(inputs.device).view(-1, 1, 1, 1, 1) * grads).sum(0)


# ------------------------------------------------------------------------------------------ attention family
def _grid(v: torch.Tensor) -> torch.Tensor:
    """(N, P) per-position values -> (N, s, s)."""
    s = round(v.shape[1] ** 0.5)
    if s * s != v.shape[1]:
        raise ValueError(f"{v.shape[1]} positions are not a square grid")
    return v.reshape(len(v), s, s)


@contextlib.contextmanager
def _capture_all(model: nn.Module, layers: list[str]):
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(capture(model, layer)) for layer in layers]


class AttentionMap(Attribution):
    """The model's own attention as a map: the spatial attention weights of ``model.attention_layer``
    (N, h*w), or for a transformer the last block's class-token attention to the patches (mean over heads).
    Class-independent: ``target`` is accepted and ignored."""

    name = "attention"

    @classmethod
    def supports(cls, model):
        return hasattr(model, "attention_layer") or hasattr(model, "attention_probs")

    @torch.no_grad()
    def attribute(self, inputs, target):
        layer = getattr(self.model, "attention_layer", None) or self.model.attention_probs[-1]
        with capture(self.model, layer) as box:
            self.model(inputs)
        a = box["a"].float()
        a = a.mean(1)[:, 0, 1:] if a.dim() == 4 else a  # (N, heads, T, T): class-token row, patches only
        return _upsample(_grid(a), inputs.shape[-2:])


def rollout(probs: list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020) of per-block attention probabilities (N, heads, T, T):
    heads averaged, the residual added as 0.5 A + 0.5 I, rows renormalised, multiplied from the first block
    to the last. Returns the class token's row restricted to the patches, (N, T - 1)."""
    n, _, t, _ = probs[0].shape
    eye = torch.eye(t, device=probs[0].device)
    r = eye.expand(n, t, t)
    for a in probs:
        a = 0.5 * a.float().mean(1) + 0.5 * eye
        r = (a / a.sum(-1, keepdim=True)) @ r
    return r[:, 0, 1:]


class AttentionRollout(Attribution):
    """Attention rollout over every block (:func:`rollout`), on the patch grid upsampled to the input.
    Class-independent: ``target`` is accepted and ignored."""

    name = "rollout"

    @classmethod
    def supports(cls, model):
        return hasattr(model, "attention_probs")

    @torch.no_grad()
    def attribute(self, inputs, target):
        with _capture_all(self.model, self.model.attention_probs) as boxes:
            self.model(inputs)
        return _upsample(_grid(rollout([b["a"] for b in boxes])), inputs.shape[-2:])


class GradRollout(Attribution):
    """Gradient-weighted attention rollout (Chefer et al., 2021, "Generic attention-model explainability"):
    R = I; for every block R <- R + mean_heads[(dA * A)+] R, with dA the gradient of the target logit with
    respect to that block's attention probabilities (one backward for the batch). Map: the class token's
    row of R over the patches."""

    name = "grad_rollout"

    @classmethod
    def supports(cls, model):
        return hasattr(model, "attention_probs")

    def attribute(self, inputs, target):
        t = _targets(target, len(inputs), inputs.device)
        x = inputs.detach().requires_grad_(True)
        with _capture_all(self.model, self.model.attention_probs) as boxes:
            logits = self.model(x)
        probs = [b["a"] for b in boxes]
        grads = torch.autograd.grad(logits.float().gather(1, t[:, None]).sum(), probs)
        n, _, length, _ = probs[0].shape
        r = torch.eye(length, device=x.device).expand(n, length, length)
        for a, g in zip(probs, grads, strict=True):
            cam = (g.float() * a.detach().float()).clamp_min(0).mean(1)
            r = r + cam @ r
        return _upsample(_grid(r[:, 0, 1:]), inputs.shape[-2:]).detach()


METHODS = {
    "gradcam": GradCAM,
    "gradcampp": GradCAMpp,
    "layercam": LayerCAM,
    "saliency": Saliency,
    "input_x_gradient": InputXGradient,
    "smoothgrad": SmoothGrad,
    "integrated_gradients": IntegratedGradients,
    "gradcam_final_tokens": GradCAMFinalTokens,
    "attention": AttentionMap,
    "rollout": AttentionRollout,
    "grad_rollout": GradRollout,
}


def applicable(names, model: nn.Module) -> list[str]:
    """The names among ``names`` whose method applies to ``model`` (order kept)."""
    return [n for n in names if METHODS[n].supports(model)]


def make(name: str, model: nn.Module, **kw) -> Attribution:
    if name not in METHODS:
        raise KeyError(f"unknown attribution method {name!r} (known: {', '.join(METHODS)})")
    return METHODS[name](model, **kw)


def attribute_batched(
    method: Attribution, x: torch.Tensor, target: torch.Tensor, batch: int = 256, **kw
) -> torch.Tensor:
    """Run ``method`` over a large set in batches; returns detached float32 (N,H,W) maps."""
    out = []
    for s in range(0, len(x), batch):
        out.append(to_map(method.attribute(x[s : s + batch], target[s : s + batch], **kw)).detach().float())
    return torch.cat(out)
