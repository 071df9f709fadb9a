"""Figures: dependency heatmaps, mask pictures, accuracy against sparsity (read-only helpers).

Plots only read results; they compute nothing the pipeline lacks.
"""
from __future__ import annotations

import math

import torch

__all__ = ["plot_dependencies", "plot_masks", "plot_tradeoff", "plot_history"]


def _grid(n: int, ncols: int = 3, size: float = 3.6):
    import matplotlib.pyplot as plt

    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * 0.9 * nrows),
                             squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat)


def plot_dependencies(dependencies: dict, *, ncols: int = 3, vmin: float | None = None,
                      vmax: float | None = None):
    """One heatmap per layer pair of D[j, i] = I_G(child group j ; parent group i | rest) (s. 4)."""
    fig, axes = _grid(len(dependencies), ncols)
    for ax, ((parent, child), d) in zip(axes, dependencies.items()):
        im = ax.imshow(torch.as_tensor(d).cpu().numpy(), cmap="viridis", aspect="auto",
                       vmin=vmin, vmax=vmax)
        ax.set_title(f"{parent} -> {child}", fontsize=9)
        ax.set_xlabel("parent group i")
        ax.set_ylabel("child group j")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle("conditional GMI between groups")
    fig.tight_layout()
    return fig


def plot_masks(masks: dict, *, ncols: int = 3):
    """Block masks per layer pair: dark = pruned connection block, light = kept (section 5)."""
    fig, axes = _grid(len(masks), ncols)
    for ax, (key, keep) in zip(axes, masks.items()):
        keep = torch.as_tensor(keep).float()
        if keep.dim() > 2:
            keep = keep.flatten(1)
        ax.imshow(keep.cpu().numpy(), cmap="gray", vmin=0, vmax=1, aspect="auto",
                  interpolation="nearest")
        name = f"{key[0]} -> {key[1]}" if isinstance(key, tuple) else str(key)
        ax.set_title(f"{name}: {100 * (1 - keep.mean().item()):.1f}% pruned", fontsize=9)
        ax.set_xlabel("parent group i")
        ax.set_ylabel("child group j")
    fig.tight_layout()
    return fig


def plot_tradeoff(rows: list[dict], *, baseline_acc: float | None = None, ax=None):
    """Accuracy against params pruned for every method in ``rows`` (run_mint's result rows)."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for method in methods:
        pts = sorted((r["pruned_pct"], 100 * r["acc"]) for r in rows if r["method"] == method)
        ax.plot(*zip(*pts), marker="o", label=method)
    if baseline_acc is not None:
        ax.axhline(100 * baseline_acc, color="gray", ls="--", label="unpruned baseline")
    ax.set_xlabel("params pruned (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_history(history: dict, ax=None):
    """Training loss and accuracy per epoch from ``train.fit``'s history."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    epochs = range(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], label="train loss")
    ax.set_xlabel("epoch")
    ax2 = ax.twinx()
    for key in ("train_acc", "test_acc"):
        if key in history:
            ax2.plot(epochs, [100 * a for a in history[key]], ls="--", label=key)
    ax2.set_ylabel("accuracy (%)")
    fig.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    return fig
