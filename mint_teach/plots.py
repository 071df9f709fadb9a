"""Figures: dependency heatmaps, mask pictures, block p-values, accuracy against sparsity,
training curves, reliability diagrams and robustness curves (read-only helpers).

Plots only read results; they compute nothing the pipeline or ``analysis`` lacks. The one
figure kept elsewhere is ``graphs.draw_mst``, which notebook 02 teaches beside the tree it
draws.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from ._validation import check_blocks, check_tensor
from .analysis import _check_reports, ece_from_bins

__all__ = ["course_style", "plot_dependencies", "plot_masks", "plot_block_pvalues",
           "plot_tradeoff", "plot_history", "plot_reliability", "plot_robustness"]

D_LABEL = "D = conditional GMI"
COURSE_STYLE = {"figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (6, 4),
                "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11,
                "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10,
                "figure.titlesize": 13}


def course_style() -> None:
    """Set matplotlib's figure resolution and font sizes for the course (dpi 100, 10-13 pt)."""
    import matplotlib.pyplot as plt

    plt.rcParams.update(COURSE_STYLE)


def _integer_ticks(ax) -> None:
    """Group indices are whole numbers: no half-step ticks."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _grid(n: int, ncols: int = 3, size: float = 4.2):
    import matplotlib.pyplot as plt

    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * 0.9 * nrows),
                             squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat)


def _per_pair(name: str, value, what: str) -> Mapping:
    """A non-empty dict of one matrix per layer pair, or a ValueError saying what is needed."""
    if not isinstance(value, Mapping) or len(value) == 0:
        raise ValueError(f"{name} must be a non-empty dict {{(parent, child): {what}}}, one "
                         f"entry per layer pair; got {value!r:.80}")
    return value


def plot_dependencies(dependencies: dict, *, ncols: int = 3, vmin: float | None = None,
                      vmax: float | None = None):
    """One heatmap per layer pair of D[j, i] = I_G(child group j ; parent group i | rest) (s. 4).

    Every D must be a non-empty, finite ``(G_c, G_p)`` matrix (ValueError otherwise).
    """
    matrices = {key: check_blocks(f"dependencies[{key!r}]", d) for key, d in
                _per_pair("dependencies", dependencies, "D of shape (G_c, G_p)").items()}
    fig, axes = _grid(len(matrices), ncols, size=4.6)
    for ax, ((parent, child), d) in zip(axes, matrices.items()):
        im = ax.imshow(d.cpu().numpy(), cmap="viridis", aspect="auto",
                       vmin=vmin, vmax=vmax)
        ax.set_title(f"{parent} -> {child}")
        ax.set_xlabel("parent group i")
        ax.set_ylabel("child group j")
        _integer_ticks(ax)
        bar = fig.colorbar(im, ax=ax, fraction=0.046)
        bar.set_label(D_LABEL)
    fig.suptitle("D[j, i]: what parent group i tells child group j\nbeyond the rest of its layer",
                 fontsize="medium")
    fig.tight_layout()
    return fig


def plot_masks(masks: dict, *, ncols: int = 3):
    """Block masks per layer pair: black = cut connection block, white = kept (section 5).

    ``masks`` is what ``pruning.masks_from_dependencies`` returns. Returns the Figure. An
    empty dict, an empty mask or one with NaN raise ValueError (its share cut would be NaN).

    Examples
    --------
    >>> keep = torch.tensor([[True, False], [True, True]])
    >>> fig = plot_masks({("fc1", "fc2"): keep})
    >>> fig.axes[0].get_title()
    'fc1 -> fc2: 25.0% of blocks cut'
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    from matplotlib.patches import Patch

    keeps = {}
    for key, keep in _per_pair("masks", masks, "block mask of shape (G_c, G_p)").items():
        keep = check_tensor(f"masks[{key!r}]", keep).float()
        if keep.numel() == 0 or keep.dim() < 2 or not bool(torch.isfinite(keep).all()):
            raise ValueError(f"masks[{key!r}] must be a non-empty (G_c, G_p) mask of 0/1 or "
                             f"booleans without NaN; got shape {tuple(keep.shape)}")
        keeps[key] = keep
    fig, axes = _grid(len(keeps), ncols)
    for ax, (key, keep) in zip(axes, keeps.items()):
        if keep.dim() > 2:
            keep = keep.flatten(1)
        ax.imshow(keep.cpu().numpy(), cmap="gray", vmin=0, vmax=1, aspect="auto",
                  interpolation="nearest")
        name = f"{key[0]} -> {key[1]}" if isinstance(key, tuple) else str(key)
        ax.set_title(f"{name}: {100 * (1 - keep.mean().item()):.1f}% of blocks cut")
        ax.set_xlabel("parent group i")
        ax.set_ylabel("child group j")
        _integer_ticks(ax)
    legend = [Patch(facecolor="white", edgecolor="black", label="kept"),
              Patch(facecolor="black", edgecolor="black", label="cut (weights zero)")]
    fig.legend(handles=legend, loc="upper right", ncols=2, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


def plot_block_pvalues(pvalues, *, ax=None, title: str | None = None):
    """Heat map of one layer pair's block p-values, ``(child groups, parent groups)``.

    ``pvalues`` is what ``mi.block_pvalues`` returns for one pair: per block, the share of
    permuted-child estimates (D itself counted) at or above its D. Small values (dark) are
    blocks beyond the null. Group indices are
    whole numbers, so the ticks are too. ``ax`` draws into existing axes. Returns the Figure.

    Examples
    --------
    >>> fig = plot_block_pvalues(torch.full((3, 4), 0.5), title="toy")
    >>> all(float(t).is_integer() for t in fig.axes[0].get_xticks())  # whole groups only
    True
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib.pyplot as plt

    p = torch.as_tensor(pvalues).detach().cpu().double()
    if p.dim() != 2:
        raise ValueError(f"pvalues must be a 2-D (child groups, parent groups) tensor; "
                         f"got shape {tuple(p.shape)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    im = ax.imshow(p.numpy(), cmap="viridis_r", vmin=0, vmax=1, aspect="auto",
                   interpolation="nearest")
    fig.colorbar(im, ax=ax, label="block p-value (small: beyond the null)")
    ax.set_xlabel("parent group i")
    ax.set_ylabel("child group j")
    _integer_ticks(ax)
    if title is not None:
        ax.set_title(title)
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
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_history(history: dict, axes=None):
    """Training loss and accuracy per epoch from ``train.fit``'s history, one panel each.

    ``history`` needs a non-empty ``"loss"`` list (one value per epoch); ``"train_acc"`` and
    ``"test_acc"`` are drawn when present. Anything else raises ValueError saying so.
    """
    import matplotlib.pyplot as plt

    if not isinstance(history, Mapping) or len(history.get("loss") or ()) == 0:
        keys = sorted(history) if isinstance(history, Mapping) else type(history).__name__
        raise ValueError("history must be train.fit's history: a dict with a non-empty 'loss' "
                         f"list, one value per epoch (and 'train_acc', 'test_acc'); got {keys}")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    fig = axes[0].figure
    epochs = range(1, len(history["loss"]) + 1)
    axes[0].plot(epochs, history["loss"], marker="o")
    axes[0].set_ylabel("training loss")
    for key in ("train_acc", "test_acc"):
        if key in history:
            axes[1].plot(epochs, [100 * a for a in history[key]], marker="o",
                         label=key.replace("_acc", ""))
    axes[1].set_ylabel("accuracy (%)")
    if axes[1].lines:
        axes[1].legend()
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- section 8

def plot_reliability(reports: Mapping[str, dict], ax=None):
    """Draw a reliability diagram (accuracy per confidence bin), one panel per model.

    Section 8. ``reports`` maps a name to a :func:`mint_teach.analysis.calibration_report`
    (or to a :func:`mint_teach.analysis.reliability_bins` dict). In each panel the bars are
    the bins' accuracies, the dashed diagonal is perfect calibration, and the red segments
    are the gaps to each bin's mean confidence: bars below the diagonal mean over-confidence.
    ``ax`` (one model) or a sequence of axes (one per model) draws into existing axes.
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    _check_reports("reports", reports)
    k = len(reports)
    if ax is None:
        fig, axes = plt.subplots(1, k, figsize=(3.6 * k, 3.8), sharey=True, squeeze=False)
        axes = list(axes.flat)
    else:
        axes = list(ax) if isinstance(ax, (list, tuple)) else [ax]
        if len(axes) != k:
            raise ValueError(f"ax must hold one axes per report ({k}); got {len(axes)}")
        fig = axes[0].figure
    for a, (name, report) in zip(axes, reports.items()):
        _reliability_panel(a, name, report)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def _reliability_panel(ax, name: str, report: Mapping) -> None:
    """One model's bars, diagonal and gaps; the title carries its ECE."""
    bins = report.get("bins", report)
    edges = torch.as_tensor(bins["edges"]).double()
    acc = torch.as_tensor(bins["accuracy"]).double()
    conf = torch.as_tensor(bins["confidence"]).double()
    keep = torch.as_tensor(bins["counts"]) > 0
    width = edges[1:] - edges[:-1]
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    ax.bar(edges[:-1][keep].numpy(), acc[keep].numpy(), width=width[keep].numpy(),
           align="edge", color="tab:blue", edgecolor="black", linewidth=0.4,
           label="accuracy in the bin")
    mid = (edges[:-1] + width / 2)[keep].numpy()
    ax.vlines(mid, acc[keep].numpy(), conf[keep].numpy(), color="tab:red", lw=2,
              label="gap to its confidence")
    ece = report.get("ece", ece_from_bins(bins))
    ax.set_title(f"{name}: ECE {ece:.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")


def plot_robustness(reports: Mapping[str, dict], ax=None):
    """Draw accuracy (in %, as every accuracy of the course) against the attack budget eps,
    one curve per model.

    Section 8. ``reports`` maps a name to a :func:`mint_teach.analysis.robustness_report`.
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    _check_reports("reports", reports)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.8))
    else:
        fig = ax.figure
    for name, report in reports.items():
        ax.plot(report["eps"], [100 * float(a) for a in report["accuracy"]], marker="o",
                label=f"{name} ({report['attack'].upper()})")
    ax.set_ylim(0, 102)
    ax.set_xlabel("eps (L-inf budget, pixel units)")
    ax.set_ylabel("accuracy under attack (%)")
    ax.set_title("Adversarial robustness")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig
