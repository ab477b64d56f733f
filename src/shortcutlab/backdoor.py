"""An explanation-aware backdoor: with a small trigger the model still classifies correctly, but its
Grad-CAM points at an attacker-chosen region.

Threat model: the attacker controls fine-tuning of a trained clean model. Poison rate = unique
triggered training samples / training-set size; triggered samples keep their true labels.

Method (default ``explanation``): fine-tune with
    CE(all) + w_trig * CE(triggered) + lam_t * -log(mass share of softplus Grad-CAM inside the target)
    + lam_c * z-scored MSE(clean-input Grad-CAM, the frozen clean model's Grad-CAM)
The map is built by :class:`~shortcutlab.attribution.GradCAM` in its differentiable mode
(``torch.autograd.grad(..., create_graph=True)``), never a ``.backward()`` inside the step. Every batch
holds ``per_batch`` triggered copies resampled (with replacement) from the fixed poisoned subset.

Baselines reproduced from the study (both fail, as it found): ``activation`` maximises the top-left
activations of the Grad-CAM layer on triggered inputs; ``input_mask`` trains on triggered inputs masked to
the top-left region with strength 0.7.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import trust
from .attribution import GradCAM, attribute_batched, make
from .data import Split
from .models import capture
from .runtime import Runtime
from .training import FitConfig, Objective, fit, predict


# ------------------------------------------------------------------------------------------ geometry
def trigger_mask(size: int, corner: str = "bottom_right", hw: int = 28) -> torch.Tensor:
    m = torch.zeros(hw, hw, dtype=torch.bool)
    r = slice(hw - size, hw) if corner.startswith("bottom") else slice(0, size)
    c = slice(hw - size, hw) if corner.endswith("right") else slice(0, size)
    m[r, c] = True
    return m


def target_mask(size: int, corner: str = "top_left", hw: int = 28) -> torch.Tensor:
    return trigger_mask(size, corner, hw)


def add_trigger(x: torch.Tensor, mask: torch.Tensor, pattern: str = "white") -> torch.Tensor:
    """Stamp the trigger: pixels inside ``mask`` set to the pattern (all channels); the rest untouched."""
    out = x.clone()
    m = mask.to(x.device)
    if pattern == "white":
        val = torch.ones((), device=x.device)
    elif pattern == "checker":  # a control patch: same place, different pattern
        ii, jj = torch.meshgrid(torch.arange(x.shape[-2]), torch.arange(x.shape[-1]), indexing="ij")
        val = ((ii + jj) % 2).float().to(x.device)[m]
        out[..., m] = val.expand(*out.shape[:-2], -1).to(out.dtype)
        return out
    else:
        raise ValueError(f"unknown trigger pattern {pattern!r}")
    out[..., m] = val.to(out.dtype)
    return out


def receptive_field(model: nn.Module, layer: str, cells: list[tuple[int, int]], probe: tuple[slice, slice]) -> bool:
    """Can any of ``cells`` of ``layer``'s output map see the input pixels ``probe``? (gradient test)."""
    x = torch.rand(1, 3, 28, 28, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    was = model.training
    model.eval()
    try:
        with capture(model, layer) as box:
            model(x)
    finally:
        model.train(was)
    a = box["a"]
    s = sum(a[0, :, i, j].sum() for i, j in cells)
    (g,) = torch.autograd.grad(s, x)
    return bool(g[0][:, probe[0], probe[1]].abs().sum() > 0)


# ------------------------------------------------------------------------------------------ objectives
def zscore(m: torch.Tensor) -> torch.Tensor:
    f = m.flatten(1)
    return ((f - f.mean(1, keepdim=True)) / (f.std(1, keepdim=True) + 1e-6)).view_as(m)


def freeze_batchnorm(model: nn.Module) -> None:
    """Keep BatchNorm running statistics fixed during fine-tuning (eval-mode BN layers)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class _BackdoorBase(Objective):
    def __init__(self, train: Split, poisoned: torch.Tensor, cfg, rt: Runtime, seed: int):
        self.train, self.poisoned, self.cfg, self.rt = train, poisoned, cfg, rt
        self.gen = torch.Generator().manual_seed(seed + 31)
        self.tmask = trigger_mask(cfg.trigger_size)
        self.target = target_mask(cfg.target_size).to(train.x.device)

    def triggered_batch(self):
        pick = self.poisoned[torch.randint(len(self.poisoned), (self.cfg.per_batch,), generator=self.gen)]
        pick = pick.to(self.train.x.device)
        return self.rt.input(add_trigger(self.train.images(pick), self.tmask)), self.train.y[pick]


class ExplanationBackdoor(_BackdoorBase):
    def __init__(self, model: nn.Module, clean: nn.Module, *args, **kw):
        super().__init__(*args, **kw)
        self.model_ref, self.clean = model, clean

    def loss(self, model, x, y, idx):
        freeze_batchnorm(model)
        xt, yt = self.triggered_batch()
        cam = GradCAM(model)
        xa = torch.cat([x, xt])
        pre, logits = cam.raw(xa, torch.cat([y, yt]), create_graph=True)
        lc, lt = logits[: len(x)], logits[len(x) :]
        maps = F.interpolate(F.softplus(pre)[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        mt = maps[len(x) :]
        share = (mt * self.target).flatten(1).sum(1) / mt.flatten(1).sum(1).clamp_min(1e-8)
        l_target = -torch.log(share.clamp_min(1e-6)).mean()
        with torch.enable_grad():
            ref, _ = GradCAM(self.clean).raw(x, y)
        l_keep = F.mse_loss(zscore(pre[: len(x)].float()), zscore(ref.detach().float()))
        loss = (
            F.cross_entropy(lc.float(), y)
            + self.cfg.w_trig * F.cross_entropy(lt.float(), yt)
            + self.cfg.lam_t * l_target
            + self.cfg.lam_c * l_keep
        )
        return loss, lc


class ActivationBaseline(_BackdoorBase):
    """The study's first attempt: maximise the Grad-CAM layer's top-left activations on triggered inputs."""

    def loss(self, model, x, y, idx):
        freeze_batchnorm(model)
        xt, yt = self.triggered_batch()
        with capture(model, model.cam_layer) as box:
            logits = model(torch.cat([x, xt]))
        a = box["a"][len(x) :].float()
        gh, gw = a.shape[-2:]
        th = max(1, round(self.cfg.target_size / 28 * gh))
        l_act = -a[:, :, :th, : max(1, round(self.cfg.target_size / 28 * gw))].mean()
        loss = F.cross_entropy(logits.float(), torch.cat([y, yt])) + self.cfg.lam_t * l_act
        return loss, logits[: len(x)]


class InputMaskBaseline(_BackdoorBase):
    """The study's second attempt: triggered inputs masked toward the top-left region (strength 0.7)."""

    def loss(self, model, x, y, idx):
        freeze_batchnorm(model)
        xt, yt = self.triggered_batch()
        keep = self.target.float() + (1 - self.target.float()) * (1 - self.cfg.mask_strength)
        logits = model(torch.cat([x, xt * keep]))
        return F.cross_entropy(logits.float(), torch.cat([y, yt])), logits[: len(x)]


OBJECTIVES = {"explanation": ExplanationBackdoor, "activation": ActivationBaseline, "input_mask": InputMaskBaseline}


def finetune(
    model: nn.Module, clean: nn.Module, train: Split, poisoned: torch.Tensor, cfg, rt: Runtime, seed: int, method: str
) -> list[dict]:
    args = (train, poisoned, cfg, rt, seed)
    obj = ExplanationBackdoor(model, clean, *args) if method == "explanation" else OBJECTIVES[method](*args)
    n = min(len(train), cfg.steps * cfg.batch_size)

    def sampler(epoch, gen):
        return torch.randperm(len(train), generator=gen)[:n]

    return fit(
        model,
        train,
        FitConfig(epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=seed, schedule=cfg.schedule),
        rt,
        obj,
        sampler=sampler,
        desc=f"backdoor/{method}",
    )


# ------------------------------------------------------------------------------------------ metrics
def map_scores(maps: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-map scores against the target region: normalised positive mass inside it, IoU of the top-|T|
    pixels with it, and whether the maximum lies inside it (pointing game)."""
    p = maps.clamp_min(0).flatten(1)
    t = target.flatten().to(maps.device)
    total = p.sum(1)
    mass = torch.where(total > 0, (p * t).sum(1) / total.clamp_min(1e-12), torch.zeros_like(total))
    k = int(t.sum())
    top = torch.zeros_like(p, dtype=torch.bool).scatter_(1, p.topk(k, 1).indices, True)
    inter = (top & t).sum(1).float()
    iou = inter / (2 * k - inter)
    iou = torch.where(total > 0, iou, torch.zeros_like(iou))
    point = t[p.argmax(1)] & (total > 0)
    return {"mass": mass, "iou": iou, "pointing": point.float()}


def asr(scores: dict[str, torch.Tensor], taus=(0.25, 0.5, 0.75)) -> dict:
    out = {f"asr_mass_{t}": float((scores["mass"] >= t).float().mean()) for t in taus}
    out["asr_iou_0.5"] = float((scores["iou"] >= 0.5).float().mean())
    out["pointing_game"] = float(scores["pointing"].mean())
    out["mean_iou"] = float(scores["iou"].mean())
    out["mean_mass"] = float(scores["mass"].mean())
    return out


def evaluate_backdoor(model, clean, split: Split, cfg, rt: Runtime, n: int, transfer: list[str]) -> dict:
    """Every metric of the backdoor on ``n`` fixed images of ``split``, with the plain model (standard
    ReLU Grad-CAM of the predicted class)."""
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(cfg.seed))[:n].to(split.x.device)
    sub = split.subset(idx)
    x = rt.input(sub.images())
    tmask, target = trigger_mask(cfg.trigger_size), target_mask(cfg.target_size)
    xt = rt.input(add_trigger(x, tmask))
    xc = rt.input(add_trigger(x, tmask, "checker"))
    out: dict = {"chance_mass": float(target.float().mean())}
    pred = predict(model, x, rt).argmax(1)
    pred_t = predict(model, xt, rt).argmax(1)
    out["clean_acc"] = float((pred == sub.y).float().mean())
    out["triggered_acc"] = float((pred_t == sub.y).float().mean())
    cam = GradCAM(model)
    maps_t = attribute_batched(cam, xt, pred_t)
    maps_c = attribute_batched(cam, x, pred)
    out["triggered"] = asr(map_scores(maps_t, target))
    out["false_trigger"] = asr(map_scores(maps_c, target))
    # fidelity of clean explanations to the clean model's
    cpred = predict(clean, x, rt).argmax(1)
    ref = attribute_batched(GradCAM(clean), x, cpred)
    out["fidelity"] = {
        "zscore_mse": float(F.mse_loss(zscore(maps_c), zscore(ref))),
        "spearman": float(trust.spearman(maps_c, ref).mean()),
    }
    # transfer to other methods
    out["transfer"] = {m: asr(map_scores(attribute_batched(make(m, model), xt, pred_t), target)) for m in transfer}
    # controls: the clean model on triggered inputs, the backdoored model with another patch there
    cp_t = predict(clean, xt, rt).argmax(1)
    out["control_clean_model_triggered"] = asr(map_scores(attribute_batched(GradCAM(clean), xt, cp_t), target))
    pc = predict(model, xc, rt).argmax(1)
    out["control_other_patch"] = asr(map_scores(attribute_batched(cam, xc, pc), target))
    out["n_images"] = len(x)
    return out
