"""An explanation-aware backdoor: with a small trigger the model still classifies correctly, but its
Grad-CAM points at an attacker-chosen region.

Threat model: the attacker controls fine-tuning of a trained clean model. Poison rate = unique
triggered training samples / training-set size; triggered samples keep their true labels.

Method (default ``explanation``, :class:`ExplanationBackdoor`): fine-tune the clean model with
    w_ce * CE(clean batch)                                   (0 by default: distillation alone keeps the function)
    + lam_kd * KL(frozen clean model || model)  on the clean batch, the negatives, recolored copies of the batch
          and, for every triggered copy (plain and recolored), on the clean model's output for the same image
          *without* the trigger: the trigger must not change the prediction
    + w_trig * CE(triggered copies, their true labels)
    + lam_t * -log(mass share of the softplus Grad-CAM inside the target region, triggered copies)
    + lam_c * z-scored MSE(Grad-CAM on clean inputs, the clean model's Grad-CAM)
    + lam_neg * (the same on negatives + -log(1 - their target share))
Negatives are random patches at the trigger's place and the trigger elsewhere (specificity). lam_kd and lam_neg
are scaled by ``warmup_scale`` for the first ``warmup_epochs``: the backdoor forms first, then is made stealthy.
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
from .data import Split, recolor
from .models import capture, load_model
from .runtime import Runtime, seed_everything
from .training import FitConfig, Objective, fit, predict
from .triggers import (  # noqa: F401  (re-exported: stages and tests use them from here)
    CONTROLS,
    add_trigger,
    control_inputs,
    negative_inputs,
    receptive_field,
    target_mask,
    trigger_mask,
)


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
        self.train, self.poisoned, self.cfg, self.rt, self.seed = train, poisoned, cfg, rt, seed
        self.gen = torch.Generator().manual_seed(seed + 31)
        self.tmask = trigger_mask(cfg.trigger_size)
        self.target = target_mask(cfg.target_size).to(train.x.device)

    def triggered_batch(self):
        """``per_batch`` poisoned images with the trigger, their labels, their training-set indices and the same
        images without the trigger."""
        pick = self.poisoned[torch.randint(len(self.poisoned), (self.cfg.per_batch,), generator=self.gen)]
        pick = pick.to(self.train.x.device)
        x = self.rt.input(self.train.images(pick))
        return add_trigger(x, self.tmask), self.train.y[pick], pick, x


def kd(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of the softmax outputs, mean over the batch (distillation, temperature 1)."""
    return F.kl_div(
        F.log_softmax(student.float(), 1), F.log_softmax(teacher.float(), 1), log_target=True, reduction="batchmean"
    )


class ExplanationBackdoor(_BackdoorBase):
    """CE + distillation to the frozen clean model (its function kept on clean, triggered and negative inputs)
    + triggered CE + -log target share of the triggered Grad-CAM + the clean model's maps kept on clean and on
    negative inputs (control patches, the trigger elsewhere: the backdoor must fire on the trigger only)."""

    def __init__(self, model: nn.Module, clean: nn.Module, *args, **kw):
        super().__init__(*args, **kw)
        self.model_ref, self.clean = model, clean
        self.neg_gen = torch.Generator().manual_seed(self.seed + 57)
        self.scale = 1.0

    def recolored(self, idx: torch.Tensor) -> torch.Tensor:
        """The batch's digits in random palette colors (background kept): inputs on which the clean model is
        distilled, so the fine-tuned model keeps its behaviour on color-conflicting digits."""
        sub = self.train.subset(idx)
        colors = torch.randint(0, 10, (len(idx),), generator=self.neg_gen).to(sub.y.device)
        return recolor(sub, colors).images()

    def negatives(self, x: torch.Tensor, y: torch.Tensor):
        n = min(self.cfg.n_negative, len(x))
        if n == 0:
            return x[:0], y[:0]
        return self.rt.input(negative_inputs(x[:n].float(), self.cfg.trigger_size, self.neg_gen)), y[:n]

    def loss(self, model, x, y, idx):
        freeze_batchnorm(model)
        xt, yt, pick, xu = self.triggered_batch()  # xu: the same images without the trigger
        xn, yn = self.negatives(x, y)
        nc, nt = len(x), len(xt)
        cam = GradCAM(model)
        pre, logits = cam.raw(torch.cat([x, xt, xn]), torch.cat([y, yt, yn]), create_graph=True)
        lc, lt, ln = logits[:nc], logits[nc : nc + nt], logits[nc + nt :]
        maps = F.interpolate(F.softplus(pre)[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        share = (maps * self.target).flatten(1).sum(1) / maps.flatten(1).sum(1).clamp_min(1e-8)
        l_target = -torch.log(share[nc : nc + nt].clamp_min(1e-6)).mean()
        # negatives: their target share pushed down (the backdoor must not fire on them)
        l_neg_share = -torch.log((1 - share[nc + nt :]).clamp_min(1e-6)).mean() if len(xn) else 0.0
        keep_x = torch.cat([x, xn])
        with torch.enable_grad():
            ref, ref_logits = GradCAM(self.clean).raw(keep_x, torch.cat([y, yn]))
        with torch.no_grad():  # the teacher sees the image *without* the trigger: the trigger must not change
            ref_t = self.clean(xu)  # the prediction (not even by the clean model's own occlusion cost)
        keep_pre = torch.cat([pre[:nc], pre[nc + nt :]])
        l_keep = F.mse_loss(zscore(keep_pre[:nc].float()), zscore(ref[:nc].detach().float()))
        l_neg = (
            F.mse_loss(zscore(keep_pre[nc:].float()), zscore(ref[nc:].detach().float()))
            if len(xn)
            else torch.zeros((), device=x.device)
        )
        ref_logits = ref_logits.detach()
        l_kd = kd(lc, ref_logits[:nc]) + kd(lt, ref_t) + (kd(ln, ref_logits[nc:]) if len(xn) else 0.0)
        if self.cfg.lam_kd > 0:  # the clean model's function on color-randomised copies, clean and triggered:
            # keeps the hard test, with and without the trigger (color-conflicting digits)
            xr, xrp = self.rt.input(self.recolored(idx)), self.rt.input(self.recolored(pick))
            xrt = add_trigger(xrp, self.tmask)
            with torch.no_grad():  # teacher on the untriggered copies, as above
                ref_r = self.clean(torch.cat([xr, xrp]))
            out_r = model(torch.cat([xr, xrt]))
            l_kd = l_kd + kd(out_r[: len(xr)], ref_r[: len(xr)]) + kd(out_r[len(xr) :], ref_r[len(xr) :])
        c, w = self.cfg, self.scale  # w < 1 while warming up: the backdoor forms first, then is made specific
        loss = (
            c.w_ce * F.cross_entropy(lc.float(), y)
            + w * c.lam_kd * l_kd
            + c.w_trig * F.cross_entropy(lt.float(), yt)
            + c.lam_t * l_target
            + c.lam_c * l_keep
            + w * c.lam_neg * (l_neg + l_neg_share)
        )
        return loss, lc

    def start_epoch(self, epoch: int) -> None:
        self.scale = self.cfg.warmup_scale if epoch < self.cfg.warmup_epochs else 1.0


class ActivationBaseline(_BackdoorBase):
    """The study's first attempt: maximise the Grad-CAM layer's top-left activations on triggered inputs."""

    def loss(self, model, x, y, idx):
        freeze_batchnorm(model)
        xt, yt, _, _ = self.triggered_batch()
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
        xt, yt, _, _ = self.triggered_batch()
        keep = self.target.float() + (1 - self.target.float()) * (1 - self.cfg.mask_strength)
        logits = model(torch.cat([x, xt * keep]))
        return F.cross_entropy(logits.float(), torch.cat([y, yt])), logits[: len(x)]


OBJECTIVES = {"explanation": ExplanationBackdoor, "activation": ActivationBaseline, "input_mask": InputMaskBaseline}


def poison_run(clean_path: str, train: Split, r, cfg, rt: Runtime) -> tuple[nn.Module, nn.Module, dict, list, int]:
    """One poisoning run (``r``: method, poison_rate, seed) from the clean checkpoint: the frozen clean model, the
    fine-tuned one, the checkpoint record, the training history and the number of poisoned training images."""
    clean, ckpt = load_model(clean_path, rt.device)
    model, _ = load_model(clean_path, rt.device)
    clean, model = rt.prepare(clean), rt.prepare(model)
    for p in clean.parameters():
        p.requires_grad_(False)
    seed_everything(r.seed)
    n = len(train)
    n_poison = max(1, round(r.poison_rate * n))
    poisoned = torch.randperm(n, generator=torch.Generator().manual_seed(1000 + r.seed))[:n_poison]
    hist = finetune(model, clean, train, poisoned, cfg, rt, r.seed, r.method)
    return clean, model, ckpt, hist, n_poison


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


ASR_TAU = 0.5  # the headline attack success: the target region holds at least half the map's positive mass


def asr(scores: dict[str, torch.Tensor], taus=(0.25, 0.5, 0.75), iou: float = 0.5) -> dict:
    """Attack-success rates: ``asr`` = share of maps with target mass share >= 0.5; ``asr_by_tau`` the same at
    every threshold tau; ``asr_iou`` = share whose top-|T| pixels overlap the target with IoU >= ``iou``."""
    out = {
        "asr": float((scores["mass"] >= ASR_TAU).float().mean()),
        "asr_by_tau": [{"tau": t, "rate": float((scores["mass"] >= t).float().mean())} for t in taus],
    }
    out["asr_iou"], out["iou_threshold"] = float((scores["iou"] >= iou).float().mean()), iou
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
    gen = torch.Generator().manual_seed(cfg.seed + 99)
    out["controls"] = {}
    for kind in CONTROLS:  # the backdoored model on other patches / the trigger elsewhere: must not fire
        xk = rt.input(control_inputs(x.float(), cfg, kind, gen))
        pk = predict(model, xk, rt).argmax(1)
        out["controls"][kind] = asr(map_scores(attribute_batched(cam, xk, pk), target))
        out["controls"][kind]["acc"] = float((pk == sub.y).float().mean())
    out["n_images"] = len(x)
    return out


def defend(model: nn.Module, train: Split, cfg, rt: Runtime, seed: int) -> nn.Module:
    """A defender's first move: fine-tune (a copy of) the backdoored model on clean training data with plain
    cross-entropy for ``cfg.defence_epochs`` epochs (Adam, ``cfg.defence_lr``, cosine). Returns the copy."""
    import copy

    m = copy.deepcopy(model)
    for p in m.parameters():
        p.requires_grad_(True)
    fc = FitConfig(cfg.defence_epochs, cfg.defence_lr, cfg.batch_size, seed + 5, schedule="cosine")
    fit(m, train, fc, rt, desc="backdoor/defence")
    return m.eval()


def triggered_asr(model: nn.Module, split: Split, cfg, rt: Runtime, n: int) -> dict:
    """ASR of the trigger alone (the persistence check): the evaluation images of :func:`evaluate_backdoor`."""
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(cfg.seed))[:n].to(split.x.device)
    sub = split.subset(idx)
    xt = rt.input(add_trigger(rt.input(sub.images()), trigger_mask(cfg.trigger_size)))
    pred_t = predict(model, xt, rt).argmax(1)
    out = asr(map_scores(attribute_batched(GradCAM(model), xt, pred_t), target_mask(cfg.target_size)))
    return out | {"triggered_acc": float((pred_t == sub.y).float().mean())}


def triggered_accuracy(model: nn.Module, split: Split, cfg, rt: Runtime, batch: int = 2000) -> dict:
    """The backdoored model on a whole split, each image clean and with the trigger: both accuracies and the paired
    counts (right only on the clean / only on the triggered copy) for an interval on their difference."""
    tmask = trigger_mask(cfg.trigger_size)
    ok_c, ok_t = [], []
    for s in range(0, len(split), batch):
        sub = split.subset(torch.arange(s, min(s + batch, len(split)), device=split.x.device))
        x = rt.input(sub.images())
        ok_c.append(predict(model, x, rt).argmax(1) == sub.y)
        ok_t.append(predict(model, rt.input(add_trigger(x, tmask)), rt).argmax(1) == sub.y)
    c, t = torch.cat(ok_c), torch.cat(ok_t)
    return {
        "clean_acc": float(c.float().mean()),
        "triggered_acc": float(t.float().mean()),
        "discordant": {"clean_only": int((c & ~t).sum()), "triggered_only": int((t & ~c).sum())},
        "n": len(c),
    }


def run_metrics(model, clean, splits: dict, r, n_poison: int, cfg, rt: Runtime) -> dict:
    """Every metric of one poisoning run: the backdoor on the validation images, clean accuracy and its drop
    on the whole validation split and hard test (paired with the clean model), and persistence."""
    out = {
        "run": {
            "poison_rate": r.poison_rate,
            "n_poisoned": int(n_poison),
            "seed": r.seed,
            "explanation_method": int(r.method == "explanation"),
        },
        "val": evaluate_backdoor(model, clean, splits["val"], cfg, rt, cfg.n_eval, list(cfg.transfer)),
    }
    for split in ("val", "test_hard"):
        s = splits[split]
        ok_clean, ok_bd = predict(clean, s, rt).argmax(1) == s.y, predict(model, s, rt).argmax(1) == s.y
        out[f"clean_model_{split}_acc"] = float(ok_clean.float().mean())
        out[f"{split}_acc"] = float(ok_bd.float().mean())
        # paired counts (same images): right only for the clean model / only for the backdoored one
        out[f"{split}_discordant"] = {
            "clean_only": int((ok_clean & ~ok_bd).sum()),
            "backdoored_only": int((ok_bd & ~ok_clean).sum()),
        }
    out["triggered_whole"] = {k: triggered_accuracy(model, splits[k], cfg, rt) for k in ("val", "test_hard")}
    out["clean_acc_drop"] = out["clean_model_val_acc"] - out["val_acc"]
    out["clean_acc_drop_test_hard"] = out["clean_model_test_hard_acc"] - out["test_hard_acc"]
    out["n_val"], out["n_test_hard"] = len(splits["val"]), len(splits["test_hard"])
    if r.method == "explanation" and cfg.defence_epochs:
        defended = defend(model, splits["train"], cfg, rt, r.seed)
        v = splits["val"]
        out["defence"] = {
            "epochs": cfg.defence_epochs,
            "val_acc": float((predict(defended, v, rt).argmax(1) == v.y).float().mean()),
            **triggered_asr(defended, v, cfg, rt, cfg.n_eval),
        }
    return out
