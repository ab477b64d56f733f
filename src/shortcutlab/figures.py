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


def _rgb(a: np.ndarray, cmap) -> np.ndarray:
    """A cell as (H, W, 3) RGB in [0,1]; a 2-D map goes through the colormap after per-map min-max scaling."""
    if a.ndim == 3:
        return np.clip(a[..., :3], 0, 1)
    lo, hi = float(a.min()), float(a.max())
    z = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return plt.get_cmap(cmap or "viridis")(z)[..., :3].astype(np.float32)


def image_grid(
    path: str | Path, images, titles=None, ncols: int = 10, cmap=None, suptitle: str = "", scale: float = 1.3
) -> None:
    """images: sequence of (3,H,W)/(H,W,3) RGB in [0,1] or (H,W) maps, drawn as one mosaic (one imshow,
    titles as text): one axes instead of one per image keeps large grids fast to render."""
    cells = [_rgb(_img(a), cmap) for a in images]
    n = len(cells)
    nrows = max(1, -(-n // ncols))
    h = max(c.shape[0] for c in cells)
    w = max(c.shape[1] for c in cells)
    band = max(4, h // 3) if titles is not None else 0  # white space above each row for the titles
    ch, cw = h + band + 1, w + 1
    canvas = np.ones((nrows * ch + 1, ncols * cw + 1, 3), dtype=np.float32)
    for i, c in enumerate(cells):
        r, k = divmod(i, ncols)
        y0, x0 = 1 + r * ch + band, 1 + k * cw
        canvas[y0 : y0 + c.shape[0], x0 : x0 + c.shape[1]] = c
    fig, ax = plt.subplots(figsize=(ncols * scale, nrows * scale * 1.1 + (0.3 if suptitle else 0)))
    ax.imshow(canvas, interpolation="nearest")
    ax.axis("off")
    if titles is not None:
        for i, t in enumerate(titles[:n]):
            r, k = divmod(i, ncols)
            ax.text(1 + k * cw + w / 2, 1 + r * ch + band - 1, str(t), ha="center", va="bottom", fontsize=6)
    if suptitle:
        ax.set_title(suptitle, fontsize=9)
    fig.tight_layout()
    save_figure(path, fig)


def heatmap(
    path: str | Path,
    matrix,
    xlabel: str,
    ylabel: str,
    title: str = "",
    xticks=None,
    yticks=None,
    fmt: str = "d",
    cmap: str = "viridis",
) -> None:
    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(0.5 * m.shape[1] + 2, 0.45 * m.shape[0] + 1.5))
    im = ax.imshow(m, cmap=cmap, aspect="auto")
    fig.colorbar(im, ax=ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks(
        range(m.shape[1]),
        xticks if xticks is not None else range(m.shape[1]),
        fontsize=7,
        rotation=90 if xticks is not None else 0,
    )
    ax.set_yticks(range(m.shape[0]), yticks if yticks is not None else range(m.shape[0]), fontsize=7)
    if m.size <= 400:
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=6, color="w")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(path, fig)


def bars(path: str | Path, labels, values, errors=None, ylabel: str = "", title: str = "", ylim=None) -> None:
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


def mosaic(imgs, ncols: int) -> np.ndarray:
    """Tile (n, 3, h, w) images in [0,1] into one (H, W, 3) array with 1-pixel white separators."""
    a = np.asarray(imgs, dtype=np.float32)
    n, _, h, w = a.shape
    nrows = max(1, -(-n // ncols))
    out = np.ones((nrows * (h + 1) + 1, ncols * (w + 1) + 1, 3), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncols)
        out[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = a[i].transpose(1, 2, 0)
    return out


def neuron_figure(path: str | Path, arrays: dict, name: str) -> None:
    """First-layer filters (weights, response to the ten palette colors, activation maximisation) and
    hidden units (color-response heatmap, CSI histogram, activation maximisation) of one model."""
    w = np.asarray(arrays["first_weights"], dtype=np.float32)
    lo, hi = w.min((1, 2, 3), keepdims=True), w.max((1, 2, 3), keepdims=True)
    w = (w - lo) / np.maximum(hi - lo, 1e-12)
    fig, ax = plt.subplots(2, 3, figsize=(16, 8))
    panels = [
        (ax[0, 0], mosaic(w, 8), "first-layer weights (per-filter min-max)"),
        (ax[0, 2], mosaic(arrays["first_actmax"], 8), "first-layer activation maximisation"),
        (ax[1, 2], mosaic(arrays["hidden_actmax"], 16), "hidden-unit activation maximisation (seed 0)"),
    ]
    for a, img, title in panels:
        a.imshow(img)
        a.set_title(title, fontsize=9)
        a.axis("off")
    for a, key, title in (
        (ax[0, 1], "first_responses", "first-layer response to pure colors (pre-activation)"),
        (ax[1, 0], "hidden_responses", "hidden-unit response to pure colors"),
    ):
        m = np.asarray(arrays[key], dtype=np.float32)
        im = a.imshow(m, aspect="auto", cmap="viridis")
        fig.colorbar(im, ax=a)
        a.set_xlabel("unit")
        a.set_ylabel("palette color")
        a.set_yticks(range(10))
        a.set_title(title, fontsize=9)
    csi = np.asarray(arrays["hidden_csi"], dtype=np.float32)
    ax[1, 1].hist(csi, bins=20, color="tab:blue")
    ax[1, 1].axvline(3.0, color="tab:red", linestyle="--", label="CSI = 3 (study's threshold)")
    ax[1, 1].set_xlabel("color selectivity index (hidden units)")
    ax[1, 1].set_ylabel("units")
    ax[1, 1].legend(fontsize=8)
    ax[1, 1].set_title(f"CSI histogram (max possible with 10 colors: {9 / np.sqrt(10):.2f})", fontsize=9)
    fig.suptitle(f"{name}: what the neurons encode", fontsize=11)
    fig.tight_layout()
    save_figure(path, fig)


# ------------------------------------------------------------------------------------------ evaluate's figures
def attack_figure(path, ar: dict[str, dict]) -> None:
    """``ar``: metrics.attack_rows (per model: eps, targeted and robust PGD curves)."""
    if not ar:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, r in ar.items():
        axes[0].plot(r["eps"], r["t_pgd"], marker="o", label=k)
        axes[1].plot(r["eps"], r["robust_pgd"], marker="o", label=k)
    axes[0].set(xlabel="eps", ylabel="targeted PGD success", title="targeted 7→3 (hard test)")
    axes[1].set(xlabel="eps", ylabel="robust accuracy", title="untargeted PGD")
    axes[1].legend(fontsize=6)
    fig.tight_layout()
    save_figure(path, fig)


def explain_figure(path, metrics: dict) -> None:
    ex = metrics.get("explain") or {}
    if not ex:
        return
    models = list(ex)
    first = ex[models[0]]["test_hard"]
    methods = [k for k in first if isinstance(first[k], dict) and "foreground_mass" in first[k]]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    width = 0.8 / len(methods)
    for j, meth in enumerate(methods):
        for ax, key in zip(axes[:2], ("foreground_mass", "insertion_auc"), strict=True):
            ax.bar(
                np.arange(len(models)) + j * width, [ex[m]["test_hard"][meth][key] for m in models], width, label=meth
            )
            ax.set_title(key + " (hard test)")
    axes[2].bar(range(len(models)), [ex[m]["test_hard"]["color_share"]["mean"] for m in models])
    axes[2].set_title("color share (IG, hard test)")
    for ax in axes:
        ax.set_xticks(
            np.arange(len(models)) + (0.4 if ax is not axes[2] else 0), models, rotation=45, ha="right", fontsize=7
        )
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    save_figure(path, fig)


def backdoor_figure(path, metrics: dict) -> None:
    bd = {
        k: v
        for k, v in (metrics.get("train_backdoor") or {}).items()
        if k != "clean" and v["run"]["explanation_method"] == 1
    }
    if not bd:
        return
    rates = sorted({v["run"]["poison_rate"] for v in bd.values()})
    fig, ax = plt.subplots(1, 3, figsize=(14, 3.5))
    for r in rates:
        vs = [v for v in bd.values() if v["run"]["poison_rate"] == r]
        ax[0].scatter([r] * len(vs), [100 * v["val"]["triggered"]["asr"] for v in vs], color="tab:red")
        ax[1].scatter([r] * len(vs), [100 * v["clean_acc_drop"] for v in vs], color="tab:blue")
        ax[2].scatter([r] * len(vs), [100 * v["clean_acc_drop_test_hard"] for v in vs], color="tab:green")
    titles = ("ASR_mass@0.5 %", "validation accuracy drop (points)", "hard-test accuracy drop (points)")
    for a, t in zip(ax, titles, strict=True):
        a.set_xscale("log")
        a.set_xlabel("poison rate")
        a.set_title(t)
    fig.tight_layout()
    save_figure(path, fig)


def debiasing_figure(path, metrics: dict) -> None:
    db = metrics.get("train_debiased") or {}
    order = sorted(db, key=lambda k: -db[k]["summary"]["hard_acc"]["mean"])
    bars(
        path,
        order,
        [100 * db[k]["summary"]["hard_acc"]["mean"] for k in order],
        [100 * db[k]["summary"]["hard_acc"]["std"] for k in order],
        ylabel="hard-test accuracy %",
        title="debiasing methods (mean ± std over seeds)",
        ylim=(0, 100),
    )
