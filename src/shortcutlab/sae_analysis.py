"""What an SAE's features mean and do: mutual information of each feature with digit and color, feature
labels (color-like / shape-like / mixed), causal interventions with the SAE's error term kept, and
:func:`analyse`, the ``sae@<name>`` stage's one call (train, measure held out, label, intervene)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .sae import SAE, convergence, hidden_acts, recovered, sae_metrics, train_sae


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


def analyse(model, splits: dict, run, cfg, rt) -> tuple[dict, dict, torch.Tensor]:
    """Train one SAE (``run``: an ``sae.runs`` entry, its variant and any per-run dictionary size, k, epochs; the
    rest from ``cfg``) on the model's standardised hidden activations (train split) and analyse it: held-out
    metrics (val), recovery when spliced, feature labels and interventions (hard test).
    Returns (the SAE's checkpoint state, metrics, the per-digit | per-color mean activation of 40 live features)."""

    def acts(x):  # hidden activations under the runtime's precision, kept as float32 on the CPU
        return hidden_acts(model, x.to(rt.device), rt=rt).cpu()

    tr = acts(splits["train"].images())
    val, hard = splits["val"], splits["test_hard"]
    av, ah = acts(val.images()), acts(hard.images())
    mu, sigma = tr.mean(0), tr.std(0).clamp_min(1e-6)
    m, k = (run.expansion or cfg.expansion) * tr.shape[1], run.k or cfg.k
    sae, hist = train_sae(
        (tr - mu) / sigma,
        run.variant,
        m,
        k=k,
        l1=cfg.l1,
        epochs=run.epochs or cfg.epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        resample_every=cfg.resample_every,
        lr_decay=cfg.lr_decay,
        monitor=(av - mu) / sigma,  # held-out readouts per epoch: the convergence record, never a choice
    )
    sae.eval()
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
    state = {"state_dict": sae.state_dict(), "variant": run.variant, "k": k, "mu": mu, "sigma": sigma}
    return state, out, torch.cat([lab["per_digit"][:, top], per_color[:, top]])
