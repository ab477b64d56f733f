"""Matplotlib figures (Agg backend): image grids and heatmaps, saved atomically as PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io import save_figure  # noqa: E402


def _img(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8 and a.max() > 1.0:
        a = a / 255.0
    return a.squeeze()


def image_grid(path: str | Path, images, titles=None, ncols: int = 10, cmap=None, suptitle: str = "",
               scale: float = 1.3) -> None:
    """images: sequence of (3,H,W)/(H,W,3) RGB in [0,1] or (H,W) maps."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale * 1.1), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            a = _img(images[i])
            ax.imshow(a, cmap=cmap if a.ndim == 2 else None, vmin=0 if a.ndim == 2 and cmap else None)
            if titles is not None:
                ax.set_title(titles[i], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    save_figure(path, fig)


def heatmap(path: str | Path, matrix, xlabel: str, ylabel: str, title: str = "", xticks=None, yticks=None,
            fmt: str = "d", cmap: str = "viridis") -> None:
    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(0.5 * m.shape[1] + 2, 0.45 * m.shape[0] + 1.5))
    im = ax.imshow(m, cmap=cmap, aspect="auto")
    fig.colorbar(im, ax=ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks(range(m.shape[1]), xticks if xticks is not None else range(m.shape[1]), fontsize=7,
                  rotation=90 if xticks is not None else 0)
    ax.set_yticks(range(m.shape[0]), yticks if yticks is not None else range(m.shape[0]), fontsize=7)
    if m.size <= 400:
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=6, color="w")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(path, fig)


def bars(path: str | Path, labels, values, errors=None, ylabel: str = "", title: str = "",
         ylim=None) -> None:
    fig, ax = plt.subplots(figsize=(max(4, 0.7 * len(labels) + 1), 3.2))
    ax.bar(range(len(labels)), values, yerr=errors, capsize=3, color="tab:blue")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(path, fig)
