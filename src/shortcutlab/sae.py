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

import torch
import torch.nn.functional as F
from torch import nn

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
        z = F.relu(self.pre(x))
        if self.variant == "topk":
            v, i = z.topk(self.k, dim=1)
            z = torch.zeros_like(z).scatter_(1, i, v)
        return z

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
):
    """Train an SAE on (N, d) activations (standardised by the caller if wanted). Returns (sae, history)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    d = acts.shape[1]
    sae = SAE(d, m, variant, k)
    with torch.no_grad():
        sae.b_dec.copy_(acts.mean(0))
    opt = Adam(sae.parameters(), lr=lr)
    last_active = torch.zeros(m, dtype=torch.long)
    step, hist = 0, []
    for ep in range(epochs):
        order = torch.randperm(len(acts), generator=gen)
        tot = 0.0
        for s in range(0, len(acts), batch_size):
            x = acts[order[s : s + batch_size]]
            x_hat, f = sae(x)
            mse = (x - x_hat).pow(2).sum(1).mean()
            if variant == "l1":
                loss = mse + l1 * f.abs().sum(1).mean()
            else:
                loss = mse
                dead = (step - last_active) > resample_every
                if dead.any():  # AuxK: dead latents reconstruct the residual
                    pre = F.relu(sae.pre(x))[:, dead]
                    kk = min(aux_k, int(dead.sum()))
                    v, i = pre.topk(kk, dim=1)
                    fa = torch.zeros_like(pre).scatter_(1, i, v)
                    resid = (x - x_hat).detach()
                    loss = loss + aux_coef * (resid - fa @ sae.dec[dead]).pow(2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sae.normalise_decoder()
            last_active[(f > 0).any(0)] = step
            step += 1
            tot += float(mse.detach()) * len(x)
            if step % resample_every == 0:  # both variants: AuxK alone left 34-55% of the lazy TopK SAE dead
                resample_dead(sae, acts, last_active, step, resample_every, gen)
        hist.append({"epoch": ep + 1, "mse": tot / len(acts)})
    return sae, hist


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
    """How far training had settled: the relative drop of the epoch's training MSE over the last ``tail``
    share of the epochs (at least one; absent when there are no earlier epochs to compare with). The report
    judges convergence (report_analysis.CONVERGED_DROP). Numbers only (the metrics contract)."""
    n = max(1, round(tail * len(hist)))
    out = {"epochs": len(hist), "tail_epochs": n}
    if len(hist) > n:
        before, last = hist[-1 - n]["mse"], hist[-1]["mse"]
        out["rel_mse_drop"] = (before - last) / max(before, 1e-12)
    return out


def explained_variance(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over the whole set."""
    return float(1 - (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum().clamp_min(1e-12))


def l0(f: torch.Tensor) -> float:
    return float((f > 0).float().sum(1).mean())


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


# ------------------------------------------------------------------------------------------ analysis
def mutual_information(active: torch.Tensor, labels: torch.Tensor, k: int = 10) -> torch.Tensor:
    """MI (bits) between each feature's binary activity (N, m) and a label in [0, k): per feature."""
    n = len(labels)
    onehot = F.one_hot(labels, k).float()  # (N,k)
    a = active.float()
    p11 = (a.T @ onehot) / n  # (m,k): P(active, label)
    p01 = ((1 - a).T @ onehot) / n
    pl = onehot.mean(0, keepdim=True)
    pa = a.mean(0, keepdim=True).T
    mi = torch.zeros(a.shape[1])
    for pj, pf in ((p11, pa), (p01, 1 - pa)):
        ratio = pj / (pf * pl).clamp_min(1e-12)
        mi += (pj * torch.log2(ratio.clamp_min(1e-12))).sum(1)
    return mi.clamp_min(0)


def feature_labels(f: torch.Tensor, digit: torch.Tensor, color: torch.Tensor, ratio: float = 2.0) -> dict:
    """On bias-conflicting samples (digit and color not confounded): MI of each live feature with the digit
    and with the color; color-like when MI_color > ratio * MI_digit, shape-like when the reverse, mixed
    otherwise. Entropy of each feature's activation mass over digits; polysemanticity = how many digits
    get >= 50% of the feature's peak mean activation."""
    active = f > 0
    live = active.any(0)
    mi_d, mi_c = mutual_information(active, digit), mutual_information(active, color)
    kind = torch.full((f.shape[1],), -1)
    kind[live & (mi_c > ratio * mi_d)] = 0  # color-like
    kind[live & (mi_d > ratio * mi_c)] = 1  # shape-like
    kind[live & (kind == -1)] = 2  # mixed
    per_digit = torch.stack(
        [f[digit == d].mean(0) if (digit == d).any() else torch.zeros(f.shape[1]) for d in range(10)]
    )  # (10,m)
    mass = per_digit / per_digit.sum(0, keepdim=True).clamp_min(1e-12)
    entropy = -(mass * torch.log2(mass.clamp_min(1e-12))).sum(0)
    poly = (per_digit >= 0.5 * per_digit.amax(0, keepdim=True).clamp_min(1e-12)).sum(0)
    return {
        "mi_digit": mi_d,
        "mi_color": mi_c,
        "kind": kind,
        "entropy": entropy,
        "poly": poly,
        "live": live,
        "per_digit": per_digit,
    }


@torch.no_grad()
def intervene(model, h, sae: SAE, scale, features: list[int], factor: float, cls: int) -> dict:
    """Scale ``features`` by ``factor`` in the SAE code of hidden activations ``h`` (N, d), keeping the
    error term: h' = dec(f') + (h - dec(f)). Returns the mean change of p(cls) and the flip rate
    (prediction changes) over the samples."""
    mu, sigma = scale
    z = (h.float() - mu) / sigma
    z_hat, f = sae(z)
    f2 = f.clone()
    f2[:, features] *= factor
    h2 = (sae.decode(f2) + (z - z_hat)) * sigma + mu
    base, new = model.logits_from_hidden(h).float(), model.logits_from_hidden(h2).float()
    pb, pn = torch.softmax(base, 1)[:, cls], torch.softmax(new, 1)[:, cls]
    return {
        "delta_p": float((pn - pb).mean()),
        "flip_rate": float((new.argmax(1) != base.argmax(1)).float().mean()),
        "to_class_rate": float((new.argmax(1) == cls).float().mean()),
        "n": len(h),
    }


# ------------------------------------------------------------------------------------------ a model's stage
def _feature_summary(lab: dict) -> dict:
    live, kinds = lab["live"], lab["kind"]
    any_live = bool(live.any())
    return {
        "live": int(live.sum()),
        "color_like": int((kinds == 0).sum()),
        "shape_like": int((kinds == 1).sum()),
        "mixed": int((kinds == 2).sum()),
        "mean_entropy_bits": float(lab["entropy"][live].mean()) if any_live else 0.0,
        "mean_polysemanticity": float(lab["poly"][live].float().mean()) if any_live else 0.0,
        "mean_mi_digit": float(lab["mi_digit"][live].mean()) if any_live else 0.0,
        "mean_mi_color": float(lab["mi_color"][live].mean()) if any_live else 0.0,
        "max_digits_per_feature": int(lab["poly"][live].max()) if any_live else 0,
        # digit selectivity of a feature: 1 - mean/max of its per-digit mean activation
        "digit_selectivity": float(
            (1 - lab["per_digit"].mean(0) / lab["per_digit"].amax(0).clamp_min(1e-12))[live].mean()
        )
        if any_live
        else 0.0,
    }


def _interventions(model, fh, ah, hard, sae, norm, lab, top: int) -> dict:
    """Error term kept, over every held-out (hard-test) sample of the class / color."""
    per_color = torch.stack([fh[hard.color == c].mean(0) for c in range(10)])
    dig, col = {}, {}
    for d in range(10):
        feats = lab["per_digit"][d].topk(top).indices.tolist()
        sel = hard.y == d
        dig[str(d)] = {
            "amplify": intervene(model, ah[sel], sae, norm, feats, 3.0, d),
            "ablate": intervene(model, ah[sel], sae, norm, feats, 0.0, d),
        }
    for c in range(10):
        feats = (per_color[c] - per_color.mean(0)).topk(top).indices.tolist()
        other = hard.color != c  # steering: push images of other colors toward color c's digit
        col[str(c)] = {
            "steer": intervene(model, ah[other], sae, norm, feats, 3.0, c),
            "ablate_own": intervene(model, ah[~other], sae, norm, feats, 0.0, c),
        }
    summary = {
        "digit_amplify_delta_p": sum(v["amplify"]["delta_p"] for v in dig.values()) / 10,
        "digit_ablate_delta_p": sum(v["ablate"]["delta_p"] for v in dig.values()) / 10,
        "digit_ablate_flip_rate": sum(v["ablate"]["flip_rate"] for v in dig.values()) / 10,
        "color_steer_to_class_rate": sum(v["steer"]["to_class_rate"] for v in col.values()) / 10,
        "color_ablate_delta_p": sum(v["ablate_own"]["delta_p"] for v in col.values()) / 10,
    }
    return {"digit": dig, "color": col}, summary, per_color


def analyse(model, splits: dict, variant: str, cfg, rt) -> tuple[dict, dict, torch.Tensor]:
    """Train one SAE on the model's standardised hidden activations (train split) and analyse it: held-out
    metrics (val), recovery when spliced, feature labels and interventions (hard test).
    Returns (the SAE's checkpoint state, metrics, the per-digit | per-color mean activation of 40 live features)."""

    def acts(x):  # hidden activations under the runtime's precision, kept as float32 on the CPU
        return hidden_acts(model, x.to(rt.device), rt=rt).cpu()

    tr = acts(splits["train"].images())
    mu, sigma = tr.mean(0), tr.std(0).clamp_min(1e-6)
    m = cfg.expansion * tr.shape[1]
    sae, hist = train_sae(
        (tr - mu) / sigma,
        variant,
        m,
        k=cfg.k,
        l1=cfg.l1,
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        resample_every=cfg.resample_every,
    )
    sae.eval()
    val, hard = splits["val"], splits["test_hard"]
    av, ah = acts(val.images()), acts(hard.images())
    model.to("cpu")  # the rest (recovery, interventions) runs the head on cached activations, on the CPU
    out = {
        "held_out": sae_metrics(sae, (av - mu) / sigma),
        "dictionary": m,
        "hidden": tr.shape[1],
        "recovery": recovered(model, av, val.y, sae, tr.mean(0), (mu, sigma)),
        "final_train_mse": hist[-1]["mse"],
        "convergence": convergence(hist),
    }
    with torch.no_grad():
        fh = sae.encode((ah - mu) / sigma)
    lab = feature_labels(fh, hard.y, hard.color)
    out["features"] = _feature_summary(lab)
    out["interventions"], out["interventions_summary"], per_color = _interventions(
        model, fh, ah, hard, sae, (mu, sigma), lab, cfg.top_features
    )
    top = lab["live"].nonzero().squeeze(1)[:40]
    state = {"state_dict": sae.state_dict(), "variant": variant, "k": cfg.k, "mu": mu, "sigma": sigma}
    return state, out, torch.cat([lab["per_digit"][:, top], per_color[:, top]])
