"""FGSM and PGD (L-infinity, inputs in [0,1], against logits), batched over images *and* epsilons.

Every epsilon of the grid is attacked in one run: the batch is the images repeated once per epsilon,
with a per-row budget. The model is in eval mode and its parameters get no gradients (only the input
does, via ``torch.autograd.grad``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .runtime import Runtime
from .training import predict


@dataclass
class AttackResult:
    x_adv: torch.Tensor  # (E, N, C, H, W)
    logits: torch.Tensor  # (E, N, 10) float32 logits of x_adv


def _loss_and_grad(model, x, y, target, rt):
    x = x.detach().requires_grad_(True)
    with rt.autocast():
        logits = model(rt.input(x)).float()
    if target is None:
        loss = F.cross_entropy(logits, y, reduction="sum")  # ascend
    else:
        loss = -F.cross_entropy(logits, target, reduction="sum")  # ascend = descend CE to target
    (g,) = torch.autograd.grad(loss, x)
    return logits.detach(), g


def _score(logits, y, target):
    """Higher is better for the attacker: success first, then confidence (targeted) or loss (untargeted)."""
    if target is None:
        success = logits.argmax(1) != y
        return success.float() * 1e3 + F.cross_entropy(logits, y, reduction="none")
    p = torch.softmax(logits, 1).gather(1, target[:, None]).squeeze(1)
    return (logits.argmax(1) == target).float() * 2 + p


def attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: list[float] | torch.Tensor,
    rt: Runtime,
    *,
    method: str = "pgd",
    steps: int = 40,
    alpha_ratio: float = 2.5,
    restarts: int = 1,
    target: int | torch.Tensor | None = None,
    seed: int = 0,
    chunk: int = 1024,
    early_stop: bool = False,
) -> AttackResult:
    """Attack ``x`` (N,C,H,W in [0,1]) at every epsilon. ``target`` (an int or a tensor of classes) makes
    it targeted. PGD: uniform random start in the eps-ball, step alpha = alpha_ratio * eps / steps,
    projection clip(x0 + clip(x - x0, -eps, eps), 0, 1) every step, the best iterate kept per sample.
    ``early_stop``: a row leaves the batch once its outcome is decided (untargeted: misclassified; targeted:
    the target class above ``STOP_CONF``), which cannot change any success rate; confidences and losses
    of successful rows are those of the stopping iterate, not of the last step.
    The (epsilon x image) rows are processed in chunks of ``chunk`` rows (cache-friendly on CPU)."""
    if method not in ("fgsm", "pgd"):
        raise ValueError(f"unknown attack {method!r}")
    model.eval()
    req = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        eps_t = torch.as_tensor(eps, dtype=torch.float32, device=x.device)
        e, n = len(eps_t), len(x)
        x0 = x.float().unsqueeze(0).expand(e, *x.shape).reshape(e * n, *x.shape[1:])
        yy = y.repeat(e)
        tt = None
        if target is not None:
            tt = (torch.full_like(y, int(target)) if not torch.is_tensor(target) else target.to(y.device)).repeat(e)
        ev = eps_t.repeat_interleave(n).view(-1, 1, 1, 1)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        xs, ls = [], []
        opts = (rt, method, steps, alpha_ratio, restarts, gen, early_stop)
        for s in range(0, e * n, chunk):
            sl = slice(s, s + chunk)
            xa, lg = _attack_rows(model, x0[sl], yy[sl], None if tt is None else tt[sl], ev[sl], *opts)
            xs.append(xa)
            ls.append(lg)
        return AttackResult(torch.cat(xs).view(e, n, *x.shape[1:]), torch.cat(ls).view(e, n, -1))
    finally:
        for p, r in zip(model.parameters(), req, strict=True):
            p.requires_grad_(r)


def _attack_rows(model, x0, yy, tt, ev, rt, method, steps, alpha_ratio, restarts, gen, early_stop):
    if method == "fgsm":
        _, g = _loss_and_grad(model, x0, yy, tt, rt)
        xa = (x0 + ev * g.sign()).clamp(0, 1)
        with torch.no_grad(), rt.autocast():
            logits = model(rt.input(xa)).float()
        return xa, logits
    alpha = alpha_ratio * ev / steps
    best_x, best_s = x0.clone(), torch.full((len(x0),), -1e9, device=x0.device)
    best_logits = None
    for _ in range(restarts):
        noise = (torch.rand(x0.shape, generator=gen) * 2 - 1).to(x0.device)
        xa = (x0 + noise * ev).clamp(0, 1)
        act = torch.arange(len(x0), device=x0.device)  # rows whose outcome is not decided yet
        for it in range(steps + 1):
            y_a, t_a = yy[act], None if tt is None else tt[act]
            logits, g = _loss_and_grad(model, xa[act], y_a, t_a, rt)
            sc = _score(logits, y_a, t_a)  # score of the current iterate (before the step)
            better = sc > best_s[act]
            rows = act[better]
            if best_logits is None:
                best_logits = torch.zeros(len(x0), logits.shape[1], device=x0.device)
            best_s[rows], best_x[rows], best_logits[rows] = sc[better], xa[rows].detach(), logits[better]
            if it == steps:
                break
            # early stop: a row is decided once its best iterate succeeds (untargeted: misclassified;
            # targeted: the target class at > STOP_CONF), so later steps cannot change its success
            if early_stop:
                keep = ~_decided(best_logits[act], y_a, t_a)
                act, g = act[keep], g[keep]
                if len(act) == 0:
                    break
            xs = xa[act].detach() + alpha[act] * g.sign()
            xa[act] = (x0[act] + (xs - x0[act]).clamp(-ev[act], ev[act])).clamp(0, 1)
    return best_x, best_logits


STOP_CONF = 0.9  # = targeted_metrics' strict_conf: a targeted row stops once it is a strict success


def _decided(logits, y, target):
    if target is None:
        return logits.argmax(1) != y
    return torch.softmax(logits, 1).gather(1, target[:, None]).squeeze(1) > STOP_CONF


def targeted_metrics(res: AttackResult, x: torch.Tensor, target: int, strict_conf: float = 0.9) -> list[dict]:
    out = []
    for k in range(res.logits.shape[0]):
        p = torch.softmax(res.logits[k], 1)
        hit = p.argmax(1) == target
        conf = p[:, target]
        out.append(
            {
                "success": float(hit.float().mean()),
                "strict_success": float((hit & (conf > strict_conf)).float().mean()),
                "target_conf": float(conf.mean()),
                "target_conf_successful": float(conf[hit].mean()) if hit.any() else 0.0,
                "linf": float((res.x_adv[k] - x).abs().amax()) if len(x) else 0.0,
            }
        )
    return out


def untargeted_metrics(res: AttackResult, x: torch.Tensor, y: torch.Tensor, clean_pred: torch.Tensor) -> list[dict]:
    out = []
    ok = clean_pred == y
    for k in range(res.logits.shape[0]):
        pred = res.logits[k].argmax(1)
        out.append(
            {
                "success_on_clean_correct": float((pred[ok] != y[ok]).float().mean()) if ok.any() else 0.0,
                "robust_acc": float((pred == y).float().mean()),
                "linf": float((res.x_adv[k] - x).abs().amax()) if len(x) else 0.0,
            }
        )
    return out


def min_eps(eps: list[float], success: list[float], level: float = 0.9) -> float | None:
    for e, s in zip(eps, success, strict=True):
        if s >= level:
            return e
    return None


class AttackCheckError(RuntimeError):
    pass


def check_results(rows: dict[str, list[dict]], eps: list[float], key: str, tol: float = 0.01, n: int = 0) -> None:
    """Built-in sanity checks (fail loudly): PGD success non-decreasing in eps (within ``tol``: its random
    start makes tiny dips possible), PGD >= FGSM (within ``tol``), budget respected, no NaNs. FGSM is not
    required to be monotone: one step of size eps can overshoot, so its success can fall as eps grows
    (reported by :func:`is_monotone`, not an error). With ``n`` images, the tolerance of a comparison is at
    least two standard errors of the difference of the two rates (sampling noise is not a bug)."""

    def tolerance(a: float, b: float) -> float:
        if n <= 0:
            return tol
        return max(tol, 2 * math.sqrt((a * (1 - a) + b * (1 - b)) / n))

    for name, r in rows.items():
        vals = [v[key] for v in r]
        for v in r:
            for kk, vv in v.items():
                if vv != vv:
                    raise AttackCheckError(f"{name}: {kk} is NaN")
        for a, b in zip(vals, vals[1:], strict=False):
            if name != "fgsm" and b < a - tolerance(a, b):
                raise AttackCheckError(f"{name}: {key} decreases with eps ({vals})")
        for e, v in zip(eps, r, strict=True):
            if v["linf"] > e + 1e-6:
                raise AttackCheckError(f"{name}: L-inf {v['linf']} exceeds eps {e}")
    if "pgd" in rows and "fgsm" in rows:
        for e, p, f in zip(eps, rows["pgd"], rows["fgsm"], strict=True):
            if p[key] < f[key] - tolerance(p[key], f[key]):
                raise AttackCheckError(f"PGD {key} {p[key]:.3f} < FGSM {f[key]:.3f} at eps {e}")


def is_monotone(values: list[float], tol: float = 0.01) -> bool:
    return all(b >= a - tol for a, b in zip(values, values[1:], strict=False))


# ------------------------------------------------------------------------------------------ a model's stage
def _targeted(model, s, cfg, rt, kw) -> tuple[dict, dict]:
    x = s.images(s.y == cfg.source).to(rt.device)
    x = x[: cfg.n_targeted] if cfg.n_targeted else x
    src = torch.full((len(x),), cfg.source, device=rt.device)
    res = {
        m: targeted_metrics(attack(model, x, src, cfg.eps, rt, method=m, target=cfg.target, **kw), x, cfg.target)
        for m in ("fgsm", "pgd")
    }
    check_results(res, list(cfg.eps), "success", n=len(x))
    out = {m: [{"eps": e, **r} for e, r in zip(cfg.eps, res[m], strict=True)] for m in res}
    out |= {"n_images": len(x), "fgsm_monotone": int(is_monotone([r["success"] for r in res["fgsm"]]))}
    for m in res:
        me = min_eps(list(cfg.eps), [r["success"] for r in res[m]])
        if me is not None:
            out[f"min_eps_90_{m}"] = me
    return out, res


def evaluate_attacks(model: nn.Module, splits: dict, cfg, rt: Runtime) -> tuple[dict, list[dict], dict]:
    """Targeted (source -> target) FGSM/PGD on every ``cfg.targeted_splits`` and untargeted on a fixed hard-test
    subset, every epsilon at once. Returns (metrics, one plots row per epsilon, the untargeted PGD example)."""
    eps = list(cfg.eps)
    kw = {"steps": cfg.steps, "alpha_ratio": cfg.alpha_ratio, "restarts": cfg.restarts, "seed": cfg.seed}
    kw["early_stop"] = cfg.early_stop
    out: dict = {"targeted": {}}
    rows = [{"eps": e} for e in eps]
    for split in cfg.targeted_splits:
        out["targeted"][split], res = _targeted(model, splits[split], cfg, rt, kw)
        for m in res:
            for i, r in enumerate(res[m]):
                rows[i][f"targeted_{split}_{m}"] = r["success"]
    s = splits["test_hard"]
    idx = torch.randperm(len(s), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.n_untargeted]
    sub = s.subset(idx.to(rt.device))
    x, y = sub.images(), sub.y

    clean = predict(model, x, rt).argmax(1)
    adv = {m: attack(model, x, y, eps, rt, method=m, **kw) for m in ("fgsm", "pgd")}
    ures = {m: untargeted_metrics(r, x, y, clean) for m, r in adv.items()}
    check_results(ures, eps, "success_on_clean_correct", n=int((clean == y).sum()))
    out["untargeted"] = {m: [{"eps": e, **r} for e, r in zip(eps, ures[m], strict=True)] for m in ures}
    out["untargeted"] |= {
        "clean_acc": float((clean == y).float().mean()),
        "n_images": len(x),
        "fgsm_monotone": int(is_monotone([r["success_on_clean_correct"] for r in ures["fgsm"]])),
    }
    for m in ures:
        for i, r in enumerate(ures[m]):
            rows[i][f"untargeted_{m}"] = r["success_on_clean_correct"]
            rows[i][f"robust_acc_{m}"] = r["robust_acc"]
    return out, rows, {"x": x, "y": y, "clean": clean, "adv": adv["pgd"]}
