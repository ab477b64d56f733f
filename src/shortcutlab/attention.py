"""Attention models (issue 9): the study's two-conv network with spatial attention and a tiny ViT, each
trained on the biased data (``erm``) and with the best debiasing method (``consistency``: the color-
consistency objective that reached the target on the shared ConvNet), plus the study's frozen-backbone case:
a linear head trained on the biased data on top of a frozen ViT backbone.
"""

from __future__ import annotations

import torch
from torch import nn

from .data import Split
from .debias import consistency_objective
from .models import build
from .runtime import Runtime
from .training import FitConfig, fit


def train_run(run, common, train: Split, rt: Runtime, evals: dict[str, Split], seed: int):
    """Train one seed of one ``train_attention.runs`` entry. Returns (model, arch_kwargs, history)."""
    kw = common.arch_kwargs(run.arch)
    torch.manual_seed(seed)
    model = build(run.arch, **kw)
    fc = FitConfig(epochs=run.epochs, lr=run.lr, batch_size=common.batch_size, seed=seed, schedule=run.schedule)
    obj = consistency_objective(common.consistency, seed, rt) if run.method == "consistency" else None
    hist = fit(model, train, fc, rt, obj, evals=evals, desc=run.arch + "/" + run.method)
    return model, kw, hist


def frozen_probe(
    backbone: nn.Module, cfg, batch_size: int, train: Split, rt: Runtime, evals: dict[str, Split], seed: int
):
    """The frozen-backbone case: every backbone parameter frozen, a freshly initialised linear head trained
    on the biased data with cross-entropy (a linear probe, like a detector head on a frozen CLIP ViT)."""
    torch.manual_seed(seed)
    for p in backbone.parameters():
        p.requires_grad_(False)
    head = backbone.head
    head.reset_parameters()
    for p in head.parameters():
        p.requires_grad_(True)
    fc = FitConfig(epochs=cfg.epochs, lr=cfg.lr, batch_size=batch_size, seed=seed, schedule="cosine")
    hist = fit(backbone, train, fc, rt, evals=evals, desc="vit_frozen", params=list(head.parameters()))
    for p in backbone.parameters():
        p.requires_grad_(True)
    return backbone, hist
