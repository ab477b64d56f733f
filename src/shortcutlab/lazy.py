"""The study's lazy model, one seed: trained, evaluated, gated (train-lazy and the bias sweep share it)."""

from __future__ import annotations

from torch import nn

from .data import Split
from .evaluation import best_epoch, evaluate_model
from .models import build
from .runtime import Runtime, seed_everything
from .training import FitConfig, check_gate, fit


def train_lazy_seed(cfg, seed: int, splits: dict[str, Split], rt: Runtime, run: str = "train-lazy"):
    """One seed of ``train_lazy`` -> (model, metrics, history). The metrics hold every split of
    :func:`evaluate_model`, the gate record, and the TEST-SELECTED ``best_epoch`` (reported, never used)."""
    seed_everything(seed)
    model: nn.Module = build("lazy")
    fc = FitConfig(epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=seed)
    evals = {"val": splits["val"], "test_hard": splits["test_hard"]}
    hist = fit(model, splits["train"], fc, rt, evals=evals, desc=f"{run} seed {seed}")
    m = evaluate_model(model, splits, rt)
    m["gate"] = check_gate(f"{run} seed {seed}", "train_lazy.gate", cfg.gate, model, splits["val"], rt)
    m["best_epoch"] = best_epoch(hist)
    return model, m, hist
