"""Sparse autoencoders on a model's hidden activations, their metrics, feature analysis and causal
interventions (with the SAE's error term kept).

Variants: ``l1`` (ReLU encoder, L1 penalty, decoder columns renormalised to unit norm after every step,
dead latents re-initialised from badly reconstructed inputs every ``resample_every`` steps) and ``topk``
(Gao et al., 2024: keep the k largest pre-activations, an auxiliary loss that lets dead latents
reconstruct the residual, and the same resampling: with AuxK alone 34% (10 epochs) to 55% (100 epochs) of the
lazy model's TopK latents were dead, with resampling 14%; ``scripts/sae_sweep.py`` measures the rest).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from . import native
from .models import capture
from .optim import Adam


class SAE(nn.Module):
    def __init__(self, d: int, m: int, variant: str = "l1", k: int = 16):
        super().__init__()
        self.variant, self.k = variant, k
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.enc = nn.Linear(d, m)
        self.dec = nn.Parameter(torch.randn(m, d) / math.sqrt(d))
        with torch.no_grad():
            self.normalise_decoder()
            self.enc.weight.copy_(self.dec)  # tied init (a common, stable start)
            self.enc.bias.zero_()

    @torch.no_grad()
    def normalise_decoder(self):
        self.dec.div_(self.dec.norm(dim=1, keepdim=True).clamp_min(1e-8))

    def pre(self, x):
        return self.enc(x - self.b_dec)

    def encode(self, x):
        if self.variant == "topk":  # relu, then each row's k largest kept: PyTorch's topk + scatter, in one kernel
            return relu_topk(self.pre(x), self.k)
        return F.relu(self.pre(x))

    def decode(self, f):
        return f @ self.dec + self.b_dec

    def forward(self, x):
        f = self.encode(x)
        return self.decode(f), f


def train_sae(
    acts: torch.Tensor,
    variant: str,
    m: int,
    *,
    k: int,
    l1: float,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    resample_every: int = 500,
    aux_k: int = 32,
    aux_coef: float = 1 / 8,
    lr_decay: float = 0.0,
    monitor: torch.Tensor | None = None,
):
    """Train an SAE on (N, d) activations (standardised by the caller if wanted). ``lr_decay``: the share of
    the final steps over which the learning rate falls linearly to 0 (0 = constant). Returns (sae, history:
    per epoch the mean training objective ``loss``, i.e. MSE + l1 term for l1, MSE for topk, and ``mse``;
    with ``monitor``, held-out activations, also their explained variance, L0 share and dead share)."""
    gen, _ = torch.Generator().manual_seed(seed), torch.manual_seed(seed)
    sae = SAE(acts.shape[1], m, variant, k)
    with torch.no_grad():
        sae.b_dec.copy_(acts.mean(0))
    opt = Adam(sae.parameters(), lr=lr)
    last_active = torch.zeros(m, dtype=torch.long)
    step, hist, total = 0, [], epochs * math.ceil(len(acts) / batch_size)
    decay_from = total - round(lr_decay * total)
    for ep in range(epochs):
        order = torch.randperm(len(acts), generator=gen)
        tot = tot_obj = 0.0
        for s in range(0, len(acts), batch_size):
            x = acts[order[s : s + batch_size]]
            x_hat, f = sae(x)
            mse = (x - x_hat).pow(2).sum(1).mean()
            loss = mse + l1 * f.abs().sum(1).mean() if variant == "l1" else mse
            objective = float(loss.detach())
            dead = (step - last_active) > resample_every
            if variant != "l1" and dead.any():  # AuxK: dead latents reconstruct the residual
                loss = loss + aux_coef * _auxk(sae, x, x_hat, dead, aux_k)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if step >= decay_from:  # linear decay to 0 over the last lr_decay of the steps
                opt.lr = lr * (total - step) / (total - decay_from)
            opt.step()
            sae.normalise_decoder()
            last_active[f.amax(0) > 0] = step  # = (f > 0).any(0) for finite f >= 0, 8x cheaper
            step += 1
            tot, tot_obj = tot + float(mse.detach()) * len(x), tot_obj + objective * len(x)
            if step % resample_every == 0 and step < decay_from:  # AuxK alone left 34-55% of lazy TopK dead
                resample_dead(sae, acts, last_active, step, resample_every, gen)
        rec = {"epoch": ep + 1, "mse": tot / len(acts), "loss": tot_obj / len(acts), "lr_factor": opt.lr / lr}
        hist.append(rec | _readouts(sae, monitor))
    return sae, hist


def _auxk(sae: SAE, x: torch.Tensor, x_hat: torch.Tensor, dead: torch.Tensor, aux_k: int) -> torch.Tensor:
    """Gao et al.'s auxiliary loss: the top ``aux_k`` dead latents reconstruct the main reconstruction's residual."""
    fa = relu_topk(sae.pre(x)[:, dead], min(aux_k, int(dead.sum())))  # = relu, then [:, dead], top-k, scatter
    return ((x - x_hat).detach() - fa @ sae.dec[dead]).pow(2).sum(1).mean()


@torch.no_grad()
def resample_dead(sae: SAE, acts: torch.Tensor, last_active, step, window, gen) -> int:
    """Re-initialise latents that were not active in the last ``window`` steps to point at inputs the
    SAE reconstructs worst (Anthropic's 'Towards monosemanticity' resampling, simplified)."""
    dead = torch.nonzero((step - last_active) >= window).squeeze(1)
    if len(dead) == 0:
        return 0
    idx = torch.randint(len(acts), (min(len(acts), 4096),), generator=gen)
    x = acts[idx]
    err = (x - sae(x)[0]).pow(2).sum(1)
    pick = idx[torch.multinomial(err / err.sum(), len(dead), replacement=True, generator=gen)]
    dirs = acts[pick] - sae.b_dec
    dirs = dirs / dirs.norm(dim=1, keepdim=True).clamp_min(1e-8)
    sae.dec[dead] = dirs
    sae.enc.weight[dead] = dirs * 0.2
    sae.enc.bias[dead] = 0.0
    last_active[dead] = step
    return len(dead)


# ------------------------------------------------------------------------------------------ metrics
def convergence(hist: list[dict], tail: float = 0.1) -> dict:
    """How far training had settled before any learning-rate decay: over a window of ``tail`` x the epochs (at
    least one) that ends at the last epoch still at the full learning rate (the last epoch when there is no
    decay; the decay would settle any run by construction), the relative drop of the training objective and its
    MSE and, where the history holds held-out readouts (``train_sae(monitor=...)``), how much the numbers the
    analysis reads moved: explained variance, L0 share, dead share (change and range). The report judges on the
    readouts (report_analysis.CONVERGED). Only the counts when there is nothing to compare. Numbers only."""
    n = max(1, round(tail * len(hist)))
    full = [i for i, h in enumerate(hist) if h.get("lr_factor", 1.0) == 1.0]
    end = full[-1] if full else len(hist) - 1
    out = {"epochs": len(hist), "tail_epochs": n, "window_end_epoch": end + 1}
    if end < n:
        return out
    win = hist[end - n : end + 1]
    before, last = win[0], win[-1]
    for key, name in (("loss", "rel_loss_drop"), ("mse", "rel_mse_drop")):
        if key in last:
            out[name] = (before[key] - last[key]) / max(before[key], 1e-12)
    if "val_explained_variance" in last:
        dead = [h["val_dead_fraction"] for h in win]
        out |= {
            "ev_change": last["val_explained_variance"] - before["val_explained_variance"],
            "l0_fraction_change": last["val_l0_fraction"] - before["val_l0_fraction"],
            "dead_fraction_change": last["val_dead_fraction"] - before["val_dead_fraction"],
            "dead_fraction_tail_range": max(dead) - min(dead),
        }
    return out


def explained_variance(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over the whole set."""
    return float(1 - (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum().clamp_min(1e-12))


def l0(f: torch.Tensor) -> float:
    return float((f > 0).float().sum(1).mean())


def _readouts(sae: SAE, x: torch.Tensor | None) -> dict:
    """The held-out numbers the analysis reads (:func:`sae_metrics`), for the per-epoch convergence record."""
    if x is None:
        return {}
    m = sae_metrics(sae, x)
    return {f"val_{k}": m[k] for k in ("explained_variance", "l0_fraction", "dead_fraction")}


@torch.no_grad()
def sae_metrics(sae: SAE, x: torch.Tensor) -> dict:
    x_hat, f = sae(x)
    dens = (f > 0).float().mean(0)
    return {
        "l0": l0(f),
        "l0_fraction": l0(f) / f.shape[1],
        "explained_variance": explained_variance(x, x_hat),
        "nmse": float((x - x_hat).pow(2).sum() / x.pow(2).sum().clamp_min(1e-12)),
        "dead_fraction": float((dens == 0).float().mean()),
        "dense_fraction": float((dens > 0.5).float().mean()),
        "shrinkage": float((x_hat.norm(dim=1) / x.norm(dim=1).clamp_min(1e-8)).mean()),
        "density_histogram": torch.histc(torch.log10(dens.clamp_min(1e-6)), bins=12, min=-6, max=0).tolist(),
    }


@torch.no_grad()
def hidden_acts(model: nn.Module, x: torch.Tensor, batch: int = 1024, rt=None) -> torch.Tensor:
    """Float32 activations (N, d) of ``model.hidden_layer``; with a Runtime, the forward pass runs under
    its autocast (bf16 where native) and input layout."""
    out = []
    ctx = rt.autocast if rt is not None else contextlib.nullcontext
    with capture(model, model.hidden_layer) as box, ctx():
        for s in range(0, len(x), batch):
            xb = x[s : s + batch]
            model(rt.input(xb) if rt is not None else xb)
            out.append(box["a"].float().flatten(1))
    return torch.cat(out)


@torch.no_grad()
def recovered(model, h, y, sae: SAE, mean_act: torch.Tensor, scale) -> dict:
    """Accuracy and CE when the SAE reconstruction replaces the hidden activations ``h`` (N, d), vs
    zero/mean ablation; the logits come from ``model.logits_from_hidden`` (the layers after the hidden
    layer). ``scale`` = (mu, sigma) of the standardisation the SAE was trained in."""
    mu, sigma = scale
    head = model.logits_from_hidden
    clean = head(h).float()
    spliced = head(sae((h.float() - mu) / sigma)[0] * sigma + mu).float()
    zero = head(torch.zeros_like(h)).float()
    mean = head(mean_act.to(h.dtype).view(1, -1).expand_as(h)).float()

    def ce(lg):
        return float(F.cross_entropy(lg, y))

    def acc(lg):
        return float((lg.argmax(1) == y).float().mean())

    out = {
        "acc_clean": acc(clean),
        "acc_spliced": acc(spliced),
        "acc_zero": acc(zero),
        "acc_mean": acc(mean),
        "ce_clean": ce(clean),
        "ce_spliced": ce(spliced),
        "ce_zero": ce(zero),
        "ce_mean": ce(mean),
    }
    out["acc_recovered"] = out["acc_spliced"] / max(out["acc_clean"], 1e-8)
    for base in ("zero", "mean"):
        den = out[f"ce_{base}"] - out["ce_clean"]
        out[f"ce_recovered_vs_{base}"] = (out[f"ce_{base}"] - out["ce_spliced"]) / den if abs(den) > 1e-8 else 1.0
    return out


# ------------------------------------------------------------------------------- the TopK activation as one kernel
# PyTorch's topk took 0.5 ms of a 2.5 ms TopK-SAE step on a (512, 256) batch, about 1 us a row, and its scatter and
# their backward more. kernels/relu_topk.cpp does relu -> topk -> scatter in one pass (and their backward in one),
# copying values, never computing them, and picking PyTorch's entries: the bits are PyTorch's (session 31; checked on
# a probe when it loads, tests/test_fused.py). Like the kernels of fused.py it falls back to PyTorch's ops where it
# does not apply, when it cannot be built, under torch.compile and with SHORTCUTLAB_FUSED=0.

TOPK_SOURCE = native.KERNELS / "relu_topk.cpp"


@cache
def topk_extension():
    """The ReLU + top-k kernel, or None; checked against PyTorch's ops on a probe when it loads."""
    ext = native.load(TOPK_SOURCE, ["-O3", "-fopenmp"] + native.native_flags())
    if ext is None:
        return None
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast("cpu", enabled=False):
        ok = _topk_agrees(ext)
    if not ok:
        warnings.warn("shortcutlab.sae: relu_topk.cpp disagrees with PyTorch here; its ops used", stacklevel=2)
        return None
    return ext


def _relu_topk_torch(pre: torch.Tensor, k: int) -> torch.Tensor:
    z = F.relu(pre)
    v, i = z.topk(k, dim=1)
    return torch.zeros_like(z).scatter_(1, i, v)


def _topk_agrees(ext) -> bool:
    g = torch.Generator().manual_seed(0)
    ok = True
    for rows, cols, k in ((200, 256, 16), (70, 64, 6), (9, 16, 16), (40, 1100, 16)):  # the last: partial_sort
        pre = torch.randn(rows, cols, generator=g)
        pre[: rows // 4] -= 2.5  # rows with fewer than k positive entries: zeros kept
        pre[rows // 8 : rows // 4, ::5] = -0.0  # ... some of them -0: PyTorch's own pick among the tied zeros
        pre[-2:, 1::3] = pre[-2:, ::3][:, : len(range(1, cols, 3))]  # equal neighbours, ties at every cut
        ref = pre.clone().requires_grad_(True)
        want = _relu_topk_torch(ref, k)
        gout = torch.randn(rows, cols, generator=g)
        want.backward(gout)
        got = ext.forward(pre, k)
        ok = ok and torch.equal(_bits(got), _bits(want))
        ok = ok and torch.equal(_bits(ext.backward(gout, got)), _bits(ref.grad))
    return ok


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().view(torch.int32)


class _ReluTopk(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, k):
        f = topk_extension().forward(pre, k)
        ctx.save_for_backward(f)
        return f

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (f,) = ctx.saved_tensors
        return topk_extension().backward(g.float(), f), None


def relu_topk(pre: torch.Tensor, k: int) -> torch.Tensor:
    """``relu(pre)`` with all but each row's ``k`` largest entries set to 0 (PyTorch's topk + scatter), through the
    kernel where it applies: a contiguous float32 (N, M) CPU tensor, k <= 64."""
    if (
        not native.compiling()
        and pre.device.type == "cpu"
        and pre.dim() == 2
        and pre.dtype == torch.float32
        and pre.is_contiguous()
        and 1 <= k <= min(64, pre.shape[1])
        and topk_extension() is not None
    ):
        return _ReluTopk.apply(pre, k)
    return _relu_topk_torch(pre, k)
