"""Debiasing methods, each an :class:`~shortcutlab.training.Objective` (and sometimes a sampler or an
auxiliary model) handed to the one training loop. None of them uses bias labels (color ids); only the
``oracle`` reference trains on a color-decorrelated copy of the training digits.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .augment import color_jitter
from .data import Split, recolor
from .models import TwoConvCNN, build, capture
from .neurons import channel_color_responses, color_selectivity
from .runtime import Runtime
from .training import FitConfig, Objective, fit, predict


# ------------------------------------------------------------------------------------------ losses
def focal_loss(logits: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    """Mean of -(1 - p_t)^gamma log p_t (Lin et al., 2017)."""
    logp = F.log_softmax(logits.float(), 1).gather(1, y[:, None]).squeeze(1)
    return (-((1 - logp.exp()) ** gamma) * logp).mean()


def gce_loss(logits: torch.Tensor, y: torch.Tensor, q: float, reduction: str = "mean") -> torch.Tensor:
    """Generalized cross-entropy (Zhang & Sabuncu, 2018): (1 - p_t^q) / q, as LfF uses for its biased model."""
    p = F.softmax(logits.float(), 1).gather(1, y[:, None]).squeeze(1).clamp_min(1e-8)
    loss = (1 - p**q) / q
    return loss.mean() if reduction == "mean" else loss


def sym_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    la, lb = F.log_softmax(logits_a.float(), 1), F.log_softmax(logits_b.float(), 1)
    return 0.5 * ((la.exp() * (la - lb)).sum(1) + (lb.exp() * (lb - la)).sum(1)).mean()


# ------------------------------------------------------------------------------------------ objectives
class Focal(Objective):
    def __init__(self, gamma: float):
        self.gamma = gamma

    def loss(self, model, x, y, idx):
        logits = model(x)
        return focal_loss(logits, y, self.gamma), logits


class Consistency(Objective):
    """CE(original) + CE(jittered) + lambda * symmetric KL between the two predictions."""

    def __init__(self, lam: float, seed: int, rt: Runtime, **jitter):
        self.lam, self.jitter, self.rt = lam, jitter, rt
        self.gen = torch.Generator().manual_seed(seed + 7919)

    def loss(self, model, x, y, idx):
        xj = self.rt.input(color_jitter(x, self.gen, **self.jitter))
        logits = model(torch.cat([x, xj]))
        lo, lj = logits[: len(y)], logits[len(y) :]
        loss = F.cross_entropy(lo.float(), y) + F.cross_entropy(lj.float(), y) + self.lam * sym_kl(lo, lj)
        return loss, lo


class LfF(Objective):
    """Learning from Failure (Nam et al., 2020). A biased model trained with GCE(q) and a debiased model
    trained with CE weighted by the relative difficulty w = CE_b / (CE_b + CE_d), from per-sample EMAs of
    both losses normalised by their class-wise maximum. No bias labels."""

    def __init__(self, biased: nn.Module, n: int, labels: torch.Tensor, q: float, ema: float):
        self.biased, self.q, self.alpha = biased, q, ema
        self.labels = labels
        self.ema_b = torch.zeros(n, device=labels.device)
        self.ema_d = torch.zeros(n, device=labels.device)

    def extra_modules(self):
        return [self.biased]

    def _update(self, ema, idx, loss):
        ema[idx] = self.alpha * ema[idx] + (1 - self.alpha) * loss.detach().float()
        cls_max = torch.zeros(10, device=ema.device).scatter_reduce(0, self.labels, ema, "amax")
        return ema[idx] / cls_max[self.labels[idx]].clamp_min(1e-8)

    def loss(self, model, x, y, idx):
        logits_d, logits_b = model(x), self.biased(x)
        ce_d = F.cross_entropy(logits_d.float(), y, reduction="none")
        ce_b = F.cross_entropy(logits_b.float(), y, reduction="none")
        nb, nd = self._update(self.ema_b, idx, ce_b), self._update(self.ema_d, idx, ce_d)
        w = (nb / (nb + nd + 1e-8)).detach()
        loss = (ce_d * w).mean() + gce_loss(logits_b, y, self.q)
        return loss, logits_d


def rbf_hsic(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Biased HSIC estimate with RBF kernels (median-heuristic bandwidths)."""

    def kernel(z):
        z = z.float()
        d = torch.cdist(z, z).pow(2)
        sigma = d.detach().median().clamp_min(1e-6)
        return torch.exp(-d / sigma)

    n = a.shape[0]
    h = torch.eye(n, device=a.device) - 1.0 / n
    k, l_ = kernel(a), kernel(b)
    return torch.trace(k @ h @ l_ @ h) / (n - 1) ** 2


def unbiased_hsic(a: torch.Tensor, b: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Unbiased HSIC estimate (Song et al., 2012) with RBF kernels of a fixed bandwidth ``sigma``: the estimator
    and kernel of clovaai/rebias's Biased-MNIST defaults (written from its formula, not copied). Unlike
    :func:`rbf_hsic` it is not scale-free: features much smaller than ``sigma`` look alike and give ~0."""

    def kernel(z):
        z = z.float().flatten(1)
        k = torch.exp(-torch.cdist(z, z).pow(2) / (2 * sigma**2))
        return k - torch.diag(torch.diag(k))  # zero diagonal

    n = a.shape[0]
    k, l_ = kernel(a), kernel(b)
    cross = torch.trace(k @ l_) + k.sum() * l_.sum() / ((n - 1) * (n - 2)) - 2 * k.sum(0).dot(l_.sum(0)) / (n - 2)
    return cross / (n * (n - 3))


HSIC = {"median": rbf_hsic, "published": unbiased_hsic}  # rebias.hsic -> estimator (schema.REBIAS_HSIC)


class ReBias(Objective):
    """ReBias (Bahng et al., 2020): f minimises CE + lam * HSIC(f, g); the color-only g (1x1 convs)
    minimises CE - lam_g * HSIC(f, g), i.e. g keeps finding the color solution f must be independent of."""

    def __init__(self, g: nn.Module, lam: float, lam_g: float, hsic=rbf_hsic):
        self.g, self.lam, self.lam_g, self.hsic = g, lam, lam_g, hsic

    def extra_modules(self):
        return [self.g]

    def loss(self, model, x, y, idx):
        with capture(model, model.hidden_layer) as fb, capture(self.g, self.g.hidden_layer) as gb:
            lf, lg = model(x), self.g(x)
        f, g = fb["a"], gb["a"]
        loss = (
            F.cross_entropy(lf.float(), y)
            + self.lam * self.hsic(f, g.detach())
            + F.cross_entropy(lg.float(), y)
            - self.lam_g * self.hsic(f.detach(), g)
        )
        return loss, lf


def jtt_sampler(n: int, errors: torch.Tensor, up: int):
    """Just Train Twice's second stage: every sample once plus the error set (up - 1) more times."""
    pool = torch.cat([torch.arange(n), errors.cpu().repeat(max(0, up - 1))])

    def sample(epoch, gen):
        return pool[torch.randperm(len(pool), generator=gen)]

    return sample


# ------------------------------------------------------------------------------------------ suppression
def choose_suppressed(csi: torch.Tensor, frac: float) -> list[int]:
    k = max(1, round(frac * len(csi)))
    return sorted(torch.argsort(csi, descending=True)[:k].tolist())


def channel_scale(n: int, suppressed: list[int], low: float, high: float) -> list[float]:
    return [low if c in set(suppressed) else high for c in range(n)]


# ------------------------------------------------------------------------------------------ oracle data


# ------------------------------------------------------------------------------------------ methods
@dataclass(frozen=True)
class Method:
    """One debiasing method: its architecture and how it trains. ``train(model, ctx)`` returns
    (history, extra metrics); ``prepare(ctx)`` may change the architecture's kwargs first (suppression)."""

    arch: str
    train: Callable
    prepare: Callable | None = None


@dataclass
class Context:
    """What a method's training sees: its params entry, the shared section, data, runtime, seed."""

    cfg: object
    common: object
    train: Split
    rt: Runtime
    seed: int
    evals: dict
    name: str
    arch_kwargs: dict
    arch: str  # the method's architecture, or the override it was trained with (the literature protocol's MLP)

    def fit_config(self, epochs: int | None = None, seed: int | None = None) -> FitConfig:
        return FitConfig(
            epochs=epochs or self.cfg.epochs,
            lr=self.cfg.lr,
            batch_size=self.common.batch_size,
            seed=self.seed if seed is None else seed,
            schedule=getattr(self.cfg, "schedule", "constant"),
        )

    def fit(self, model, objective=None, sampler=None, data: Split | None = None):
        return fit(
            model,
            data or self.train,
            self.fit_config(),
            self.rt,
            objective,
            sampler=sampler,
            evals=self.evals,
            desc=self.name,
        )

    def aux(self, arch: str | None = None) -> nn.Module:
        return build(arch or self.arch, **(self.arch_kwargs if arch is None else {}))


def consistency_objective(c, seed: int, rt: Runtime) -> Consistency:
    return Consistency(
        c.lam,
        seed,
        rt,
        brightness=c.brightness,
        contrast=c.contrast,
        saturation=c.saturation,
        hue=c.hue,
        extreme_frac=c.extreme_frac,
    )


def _erm(model, ctx):
    return ctx.fit(model), {}


def _oracle(model, ctx):
    gen = torch.Generator().manual_seed(ctx.seed + 104729)
    colors = torch.randint(0, 10, (len(ctx.train),), generator=gen).to(ctx.train.y.device)
    return ctx.fit(model, data=recolor(ctx.train, colors)), {}


def _focal(model, ctx):
    return ctx.fit(model, Focal(ctx.cfg.gamma)), {}


def _consistency(model, ctx):
    return ctx.fit(model, consistency_objective(ctx.cfg, ctx.seed, ctx.rt)), {}


def _lff(model, ctx):
    return ctx.fit(model, LfF(ctx.aux(), len(ctx.train), ctx.train.y, ctx.cfg.q, ctx.cfg.ema)), {}


def _jtt(model, ctx):
    ident = ctx.aux()
    fit(ident, ctx.train, ctx.fit_config(ctx.cfg.id_epochs, ctx.seed + 1), ctx.rt, desc="jtt/identify")
    errors = torch.nonzero(predict(ident, ctx.train, ctx.rt).argmax(1) != ctx.train.y).squeeze(1)
    extra = {
        "error_set_size": int(len(errors)),
        "error_set_conflicting_share": float(ctx.train.conflict[errors].float().mean()) if len(errors) else 0.0,
    }
    return ctx.fit(model, sampler=jtt_sampler(len(ctx.train), errors, ctx.cfg.up)), extra


def _rebias(model, ctx):
    return ctx.fit(model, ReBias(ctx.aux("color_net"), ctx.cfg.lam, ctx.cfg.lam_g, HSIC[ctx.cfg.hsic])), {}


def _suppression_prepare(ctx):
    """1) a probe model of the same architecture trained on the biased data, 2) CSI of its conv2 channels on
    the ten pure palette colors, 3) the trained model gets those channels scaled by ``low``."""
    probe = ctx.aux()
    fit(probe, ctx.train, ctx.fit_config(ctx.cfg.probe_epochs, ctx.seed + 1), ctx.rt, desc="suppression/probe")
    csi = color_selectivity(channel_color_responses(probe, probe.cam_layer, ctx.train.palette.to(ctx.rt.device)))
    chosen = choose_suppressed(csi, ctx.cfg.suppress_frac)
    ctx.arch_kwargs["channel_scale"] = channel_scale(len(csi), chosen, ctx.cfg.low, ctx.cfg.high)
    return {"csi": csi.tolist(), "suppressed_channels": chosen}


def _convnet_kwargs(cfg, common) -> dict:
    return {"widths": list(common.convnet_widths), "context": common.convnet_context}


# name -> method; params.yaml configures them (train_debiased.methods.<name>, schema.METHOD_CONFIGS)
METHODS: dict[str, Method] = {
    "consistency": Method("two_conv", _consistency),
    "focal": Method("two_conv", _focal),
    "shape_cnn": Method("shape_cnn", _erm),
    "suppression": Method("two_conv", _erm, _suppression_prepare),
    "lff": Method("convnet", _lff),
    "jtt": Method("convnet", _jtt),
    "rebias": Method("convnet", _rebias),
    "consistency_convnet": Method("convnet", _consistency),
    "vanilla": Method("convnet", _erm),
    "oracle": Method("convnet", _oracle),
}


def arch_kwargs(name: str, cfg, common) -> dict:
    arch = METHODS[name].arch
    if arch == "convnet":
        return _convnet_kwargs(cfg, common)
    return {"width": cfg.width} if arch == "shape_cnn" else {}


def train_method(
    method: str, cfg, common, train: Split, rt: Runtime, seed: int, evals: dict[str, Split], arch: tuple | None = None
):
    """Train one method with one seed; ``arch`` = (name, kwargs) overrides the method's architecture (and its
    auxiliary models': LfF's biased model, JTT's identification model). Returns (model, arch, arch_kwargs,
    history, extra metrics)."""
    if method not in METHODS:
        raise KeyError(f"train_debiased: unknown method {method!r} (known: {', '.join(METHODS)})")
    m = METHODS[method]
    name, kw = arch or (m.arch, arch_kwargs(method, cfg, common))
    torch.manual_seed(seed)
    ctx = Context(cfg, common, train, rt, seed, evals, method, dict(kw), name)
    extra = m.prepare(ctx) if m.prepare else {}
    torch.manual_seed(seed)
    model = build(name, **ctx.arch_kwargs)
    hist, more = m.train(model, ctx)
    return model, name, ctx.arch_kwargs, hist, {**extra, **more}


# ------------------------------------------------------------------------------------------ a method's stage
@dataclass
class SeedsResult:
    models: dict  # seed -> (model, arch, arch_kwargs)
    metrics: dict
    curve: list[dict]
    timings: dict


def train_seeds(method: str, common, splits: dict[str, Split], rt: Runtime) -> SeedsResult:
    """Every seed of one method, each gated (``train_debiased.gate``) before any is returned for saving.
    Final-epoch models; the per-epoch hard-test accuracy is logged for plotting only."""
    from .evaluation import evaluate_model, seed_summary
    from .training import check_gate

    cfg = common.method(method)
    models, per_seed, curve, timings = {}, {}, [], {}
    for seed in common.seeds_for(method):
        model, arch, kw, hist, extra = train_method(
            method, cfg, common, splits["train"], rt, seed, evals={"test_hard": splits["test_hard"]}
        )
        m = evaluate_model(model, {k: v for k, v in splits.items() if k != "train"}, rt)
        m["gate"] = check_gate(
            f"train-debiased@{method} seed {seed}", "train_debiased.gate", common.gate, model, splits["val"], rt
        )
        m.update(extra)
        models[seed], per_seed[str(seed)] = (model, arch, kw), m
        curve += [
            {"seed": seed, "epoch": h["epoch"], "train_loss": h["train_loss"], "test_hard_acc": h["test_hard_acc"]}
            for h in hist
        ]
        timings[f"seed{seed}"] = {
            "train_seconds": sum(h["seconds"] for h in hist),
            "images_per_s": statistics.fmean(h["images_per_s"] for h in hist),
        }
        print(
            f"{method} seed {seed} [{rt.describe()}]: hard={m['test_hard']['acc']:.4f} "
            f"easy={m['test_easy']['acc']:.4f} val={m['val']['acc']:.4f}",
            flush=True,
        )
    summary = seed_summary(per_seed)
    metrics = {
        "method": {"arch": METHODS[method].arch, "epochs": cfg.epochs, "n_seeds": len(per_seed)},
        "summary": summary,
        "seeds": per_seed,
    }
    return SeedsResult(models, metrics, curve, timings)


__all__ = ["METHODS", "TwoConvCNN", "train_method", "train_seeds"]
