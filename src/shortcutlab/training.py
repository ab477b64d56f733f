"""The one training loop. Methods differ by their objective (and sometimes a sampler): they hand an
:class:`Objective` to :func:`fit` instead of writing their own loop.

Data stays a uint8 tensor in memory; a batch is an index tensor, converted to float on the fly.
No checkpoint selection: :func:`fit` returns the final-epoch model and a per-epoch history. Evaluation
splits passed in ``evals`` are logged per epoch for plotting only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .data import Split
from .errors import GateError
from .optim import Adam, cosine
from .runtime import Runtime, quiet


@dataclass(frozen=True)
class FitConfig:
    epochs: int
    lr: float
    batch_size: int
    seed: int
    weight_decay: float = 0.0
    schedule: str = "constant"  # or "cosine": per-step cosine decay of the learning rate to 0


class Objective:
    """Loss of one batch. Subclasses override :meth:`loss`; extra trainable modules (an auxiliary
    biased model, say) are returned by :meth:`extra_modules` and optimised with the model."""

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor):
        """Return (scalar loss, logits of x)."""
        logits = model(x)
        return F.cross_entropy(logits.float(), y), logits

    def extra_modules(self) -> list[nn.Module]:
        return []

    def start_epoch(self, epoch: int) -> None:
        pass


Sampler = Callable[[int, torch.Generator], torch.Tensor]


def random_sampler(n: int) -> Sampler:
    def sample(epoch: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randperm(n, generator=gen)

    return sample


def _epoch(model, train, order, cfg, rt, objective, opt, step: int, total: int, desc: str, epoch: int):
    """One pass over ``order`` (index batches); returns (summed loss, correct, images seen, global step)."""
    tot_loss = torch.zeros((), device=train.x.device)
    tot_ce = torch.zeros((), device=train.x.device)  # the model's own cross-entropy, whatever the objective adds
    correct = torch.zeros((), device=train.x.device, dtype=torch.long)
    seen = 0
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start : start + cfg.batch_size]
        x = rt.input(train.images(idx))
        y = train.y[idx]
        with rt.autocast():
            loss, logits = objective.loss(model, x, y, idx)
        if not torch.isfinite(loss):
            raise GateError(
                f"{desc}: quality gate failed: non-finite training loss at epoch {epoch + 1}, step {step + 1} "
                "(diverged: lower the learning rate); the model is not published"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.lr = cfg.lr * (cosine(step, total) if cfg.schedule == "cosine" else 1.0)
        opt.step()
        step += 1
        tot_loss += loss.detach() * len(idx)
        tot_ce += F.cross_entropy(logits.detach().float(), y, reduction="sum")
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(idx)
    return tot_loss, tot_ce, correct, seen, step


def fit(
    model: nn.Module,
    train: Split,
    cfg: FitConfig,
    rt: Runtime,
    objective: Objective | None = None,
    sampler: Sampler | None = None,
    evals: dict[str, Split] | None = None,
    desc: str = "train",
    params: list | None = None,
) -> list[dict]:
    """Train ``model`` in place; return one dict per epoch (loss, accuracies, seconds, images/s)."""
    objective = objective or Objective()
    sampler = sampler or random_sampler(len(train))
    gen = torch.Generator().manual_seed(cfg.seed)
    model = rt.prepare(model)
    for m in objective.extra_modules():
        rt.prepare(m)
    if params is None:
        params = list(model.parameters()) + [p for m in objective.extra_modules() for p in m.parameters()]
    opt = Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-len(sampler(0, torch.Generator().manual_seed(cfg.seed))) // cfg.batch_size)
    total = max(1, cfg.epochs * steps_per_epoch)
    step = 0
    history = []
    bar = tqdm(range(cfg.epochs), desc=desc, disable=quiet(), leave=False)
    for epoch in bar:
        model.train()
        for m in objective.extra_modules():
            m.train()
        objective.start_epoch(epoch)
        order = sampler(epoch, gen).to(train.x.device)
        t0 = time.perf_counter()
        tot_loss, tot_ce, correct, seen, step = _epoch(
            model, train, order, cfg, rt, objective, opt, step, total, desc, epoch
        )
        secs = time.perf_counter() - t0
        row = {
            "epoch": epoch + 1,
            "train_loss": float(tot_loss) / seen,
            "train_ce": float(tot_ce) / seen,
            "train_acc": float(correct) / seen,
            "seconds": secs,
            "images_per_s": seen / secs,
        }
        for name, split in (evals or {}).items():
            row[f"{name}_acc"] = accuracy(model, split, rt)
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_acc']:.3f}")
    model.eval()
    return history


@torch.no_grad()
def predict(model: nn.Module, split: Split | torch.Tensor, rt: Runtime, batch_size: int = 512) -> torch.Tensor:
    """Float32 logits for a whole split (or an image tensor in [0,1])."""
    was_training = model.training
    model.eval()
    out = []
    n = len(split)
    for s in range(0, n, batch_size):
        x = split.images(slice(s, s + batch_size)) if isinstance(split, Split) else split[s : s + batch_size]
        with rt.autocast():
            out.append(model(rt.input(x.to(rt.device))).float())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 10)


def accuracy(model: nn.Module, split: Split, rt: Runtime) -> float:
    return float((predict(model, split, rt).argmax(1) == split.y).float().mean())


# ------------------------------------------------------------------------------------------ quality gate
def check_gate(run: str, key: str, gate, model: nn.Module, val: Split, rt: Runtime) -> dict:
    """Refuse to publish a model that did not learn (diverged, at chance): the final model's accuracy on the
    whole validation split must reach ``gate.min_val_acc`` and its mean cross-entropy there stay at or below
    ``gate.max_val_ce`` (a diverged model's is huge; chance is ln 10 = 2.30). ``key`` is the params key of the
    gate, named in the error. Returns the record written to the metrics."""
    logits = predict(model, val, rt)
    acc = float((logits.argmax(1) == val.y).float().mean())
    ce = float(F.cross_entropy(logits, val.y))
    checks = (
        ("val.acc", acc, ">=", gate.min_val_acc, f"{key}.min_val_acc"),
        ("val cross-entropy", ce, "<=", gate.max_val_ce, f"{key}.max_val_ce"),
    )
    for metric, value, op, bound, name in checks:
        ok = value >= bound if op == ">=" else value <= bound  # NaN fails both
        if not ok:
            raise GateError(
                f"{run}: quality gate failed: {metric} = {value:.4g}, must be {op} {bound} ({name}); "
                "the model is not published (diverged or did not learn: check the learning rate "
                "and schedule, or the gate in params.yaml)"
            )
    return {"min_val_acc": gate.min_val_acc, "max_val_ce": gate.max_val_ce, "val_acc": acc, "val_ce": ce, "passed": 1}


TIMING_KEYS = ("seconds", "images_per_s")


def strip_timing(row: dict) -> dict:
    """An epoch's history row without its wall-clock fields (those go to metrics/timings/)."""
    return {k: v for k, v in row.items() if k not in TIMING_KEYS}


def epoch_timings(history: list[dict]) -> dict:
    return {
        "train_seconds": sum(h["seconds"] for h in history),
        "images_per_s": sum(h["images_per_s"] for h in history) / max(1, len(history)),
        "epochs": [{k: h[k] for k in ("epoch", *TIMING_KEYS)} for h in history],
    }
