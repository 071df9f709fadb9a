"""Interactive explorers for notebooks: one call shows a slider, a picture and the numbers.

- ``mst_explorer``: two point clouds, their minimum spanning tree, the Friedman-Rafsky count R
  and the Henze-Penrose divergence (docs/method.md sections 4a and 4c);
- ``threshold_explorer``: the prune fraction q (or the threshold delta) against the masks,
  the share of weights pruned and the accuracy before fine-tuning (section 5).

Widgets only read and show: every number comes from a function of ``graphs``, ``mi``,
``pruning`` or ``train``. Each returned box carries ``.slider``, ``.label`` (the numbers as
HTML) and ``.state`` (the same numbers as a dict); setting ``.slider.value`` from Python
updates all three at once, so the widgets can be tested without a browser.
"""
from __future__ import annotations

import copy
import io
from collections.abc import Mapping
from typing import Any

import ipywidgets
import torch
from torch import nn
from torch.utils.data import Subset

from . import graphs, mi, plots, pruning, train
from ._validation import check_blocks, check_count, check_number, check_seed

__all__ = ["mst_explorer", "threshold_explorer"]

_MODES = ("fraction", "delta")


def _png(fig: Any, dpi: int = 80) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it, so no figure is left open."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- MST (4a, 4c)

def mst_explorer(n: int = 30, *, dim: int = 2, seed: int = 0,
                 separation: float = 1.0) -> ipywidgets.VBox:
    """Move one point cloud away from another and watch the MST's cross edges (sections 4a, 4c).

    Cloud A and cloud B hold ``n`` standard Gaussian points each (seeded); the slider shifts B
    by ``separation`` along the first axis. For every position the picture shows the Euclidean
    MST of the pooled points (``graphs.draw_mst``: A blue, B orange, cross edges red) and the
    label shows R, the number of tree edges joining A to B (``graphs.cross_edges``, reading both
    ends of every edge as section 4c demands), and ``D_HP = 1 - R (m + n) / (2 m n)``
    (``mi.hp_from_count``). Same clouds: about half the edges cross and D_HP is near 0; far
    apart: one edge crosses and D_HP approaches 1.

    Parameters
    ----------
    n : int
        Points per cloud (at least 2).
    dim : int
        Dimension of the points; the picture shows the first two coordinates.
    seed : int
        Seed of the two clouds.
    separation : float
        Starting position of the slider, in [0, 4].

    Returns
    -------
    ipywidgets.VBox
        With ``.slider`` (FloatSlider "separation"), ``.label`` (HTML with R and D_HP),
        ``.image`` (the MST picture) and ``.state``: ``separation``, ``R``, ``D_HP``,
        ``points`` (``(2n, dim)`` tensor, A first), ``membership`` (0 for A, 1 for B),
        ``edges``.

    Examples
    --------
    >>> box = mst_explorer(20, seed=1)
    >>> box.slider.value = 4.0
    >>> box.state["R"] <= 3
    True
    """
    n = check_count("n", n, low=2)
    dim = check_count("dim", dim, low=1)
    seed = check_seed(seed)
    if seed is None:
        raise ValueError("seed must be a non-negative integer; got None")
    start = check_number("separation", separation, low=0.0, high=4.0)  # a number, not "2"

    generator = torch.Generator().manual_seed(seed)
    cloud_a = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    cloud_b = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    membership = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    shift = torch.zeros(dim, dtype=torch.float64)
    shift[0] = 1.0

    # Fixed axes, so moving the slider moves cloud B across a still picture.
    both = torch.cat([cloud_a, cloud_b, cloud_b + 4.0 * shift])
    low, high = both.min(0).values - 0.5, both.max(0).values + 0.5
    y_low, y_high = (float(low[1]), float(high[1])) if dim > 1 else (-1.0, 1.0)

    slider = ipywidgets.FloatSlider(value=start, min=0.0, max=4.0, step=0.1,
                                    description="separation", continuous_update=False,
                                    readout_format=".1f")
    label = ipywidgets.HTML()
    image = ipywidgets.Image(format="png", layout=ipywidgets.Layout(width="420px"))
    state: dict[str, Any] = {}

    def update(change: Any = None) -> None:
        sep = float(slider.value)
        points = torch.cat([cloud_a, cloud_b + sep * shift])  # (2n, dim), A first
        edges = graphs.mst(points)  # (2n - 1, 2)
        r = graphs.cross_edges(edges, membership)
        d_hp = float(mi.hp_from_count(r, n, n))
        state.update(separation=sep, R=r, D_HP=d_hp, points=points, membership=membership,
                     edges=edges)
        label.value = (
            f"<b>R = {r} cross edges</b> of {2 * n - 1}, <b>D_HP = {d_hp:.3f}</b> "
            f"&nbsp; (D_HP = 1 - R (m + n) / (2 m n), m = n = {n}; "
            f"cloud A blue, cloud B orange, cross edges red)"
        )
        image.value = _mst_picture(points, membership, (float(low[0]), float(high[0])),
                                   (y_low, y_high),
                                   f"separation {sep:.1f}: R = {r}, D_HP = {d_hp:.3f}")

    return _explorer_box(slider, label, image, state, update)


def _mst_picture(points: torch.Tensor, membership: torch.Tensor, xlim: tuple[float, float],
                 ylim: tuple[float, float], title: str) -> bytes:
    """``graphs.draw_mst`` on fixed axes, as PNG bytes."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    graphs.draw_mst(points, membership, ax=ax)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_title(title)
    fig.tight_layout()
    return _png(fig)


# ----------------------------------------------------------------------------- threshold (5)

def _eval_subset(eval_data: Any, eval_items: int, seed: int) -> Any:
    """A fixed, seeded subset of ``eval_items`` items (all of them when there are fewer)."""
    total = len(eval_data)
    if eval_items >= total:
        return eval_data
    rows = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:eval_items]
    rows = rows.sort().values.tolist()
    if isinstance(eval_data, Subset):  # flatten, so train's fast batching sees the base set
        return Subset(eval_data.dataset, [eval_data.indices[r] for r in rows])
    return Subset(eval_data, rows)


def threshold_explorer(
    model: nn.Module,
    dependencies: Mapping,
    eval_data: Any,
    *,
    mode: str = "fraction",
    value: float | None = None,
    max_pair_fraction: float = 0.75,
    eval_items: int = 1000,
    seed: int = 0,
    device: Any = None,
) -> ipywidgets.VBox:
    """Slide the prune fraction q (or the threshold delta) and see what MINT would cut (section 5).

    For every slider position the masks come from ``pruning.masks_from_dependencies`` (one
    global threshold, the per-pair cap ``max_pair_fraction``), are applied to a copy of
    ``model`` with ``pruning.apply_masks``, and the box shows the block masks
    (``plots.plot_masks``), the share of the pruned layers' weights set to zero
    (``pruning.sparsity_report`` over the child layers of ``dependencies``) and the accuracy
    of the pruned copy before any fine-tuning (``train.evaluate`` on a fixed, seeded subset of
    ``eval_items`` items of ``eval_data``). ``model`` itself is never changed.

    Parameters
    ----------
    model : nn.Module
        The trained, unpruned network (e.g. ``run_mint(...).model``).
    dependencies : dict ``{(parent, child): D}``
        Dependency matrices ``(G_c, G_p)``, e.g. ``run_mint(...).dependencies``.
    eval_data : Dataset
        Where the accuracy is measured, e.g. ``data.load_dataset("digits", train=False)``.
    mode : {"fraction", "delta"}
        Slide the quantile q in [0, 1], or the threshold delta up to the largest dependence;
        the delta slider's range begins one step below the smallest, where nothing is pruned.
    value : float, optional
        Starting slider value; default q = 0.5, or the median dependence.
    max_pair_fraction : float
        The per-pair cap (published default 0.75).
    eval_items : int
        How many items of ``eval_data`` the accuracy uses (all when there are fewer).
    seed : int
        Seed of that subset.
    device : optional
        Where the accuracy is evaluated; None means CUDA when available, else CPU.

    Returns
    -------
    ipywidgets.VBox
        With ``.slider``, ``.label`` (HTML), ``.image`` (the mask picture) and ``.state``:
        ``mode``, ``value``, ``masks``, ``report``, ``pruned_pct`` (0-100), ``accuracy``
        (fraction), ``baseline_accuracy``, ``blocks_pruned``, ``blocks``, ``eval_items``.
    """
    _check_threshold_inputs(model, dependencies, eval_data, mode)
    eval_items = check_count("eval_items", eval_items, low=1)
    seed = check_seed(seed)
    if seed is None:
        raise ValueError("seed must be a non-negative integer; got None")
    deps = _checked_dependencies(model, dependencies, max_pair_fraction)
    layers = list(dict.fromkeys(child for _, child in deps))
    subset = _eval_subset(eval_data, eval_items, seed)
    n_eval = len(subset)
    where = (f"all {n_eval} items" if n_eval == len(eval_data)
             else f"a fixed subset of {n_eval} of {len(eval_data)} items, seed {seed}")
    baseline = train.evaluate(model, subset, device=device)
    slider = _threshold_slider(mode, deps, value)
    label = ipywidgets.HTML()
    image = ipywidgets.Image(format="png", layout=ipywidgets.Layout(max_width="100%"))
    state: dict[str, Any] = {}

    def update(change: Any = None) -> None:
        how = {"prune_fraction" if mode == "fraction" else "threshold": float(slider.value)}
        masks = pruning.masks_from_dependencies(deps, **how, max_pair_fraction=max_pair_fraction)
        state.update(_pruned_numbers(model, masks, layers, subset, device), mode=mode,
                     value=float(slider.value), baseline_accuracy=baseline, eval_items=n_eval)
        label.value = _threshold_label(state, layers, where)
        image.value = _png(plots.plot_masks(masks))

    return _explorer_box(slider, label, image, state, update)


def _check_threshold_inputs(model: Any, dependencies: Any, eval_data: Any, mode: Any) -> None:
    """A ValueError (or TypeError) for a bad mode, empty data, no matrices or no model."""
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, _MODES))}; got {mode!r}")
    if len(eval_data) == 0:
        raise ValueError("eval_data is empty (0 items); pass the test set, e.g. "
                         "data.load_dataset('digits', train=False)")
    if not isinstance(dependencies, Mapping) or len(dependencies) == 0:
        raise ValueError(
            "dependencies must be a non-empty dict {(parent, child): D of shape (G_c, G_p)}, "
            f"e.g. run_mint(...).dependencies; got {dependencies!r:.80}"
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module; got {type(model).__name__}")


def _checked_dependencies(model: nn.Module, dependencies: Mapping,
                          max_pair_fraction: float) -> dict:
    """The matrices on the CPU, with their keys, shapes and the cap checked once, here, rather
    than inside a slider callback. Non-finite entries (NaN, -inf) are refused by name: the
    delta slider's range is built from the smallest and the largest."""
    deps = {key: check_blocks(f"dependencies[{key!r}]", d).detach().cpu()
            for key, d in dependencies.items()}
    pruning.masks_from_dependencies(deps, prune_fraction=0.0,
                                    max_pair_fraction=max_pair_fraction)
    pruning.apply_masks(copy.deepcopy(model), {key: torch.ones_like(d, dtype=torch.bool)
                                               for key, d in deps.items()})
    return deps


def _threshold_slider(mode: str, deps: Mapping, value: float | None) -> ipywidgets.FloatSlider:
    """The q slider on [0, 1], or the delta slider from one step below the smallest dependence
    to the largest; started at ``value`` (default q = 0.5, or the median dependence)."""
    values = torch.cat([d.flatten().double() for d in deps.values()])
    d_min, d_max = float(values.min()), float(values.max())
    if mode == "fraction":
        slider = ipywidgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01,
                                        description="fraction q", readout_format=".2f",
                                        continuous_update=False)
    else:
        step = (d_max - d_min) / 200 if d_max > d_min else 1e-3
        slider = ipywidgets.FloatSlider(value=float(values.median()), min=d_min - step,
                                        max=d_max, step=step, description="delta",
                                        readout_format=".4f", continuous_update=False)
    if value is not None:
        value = check_number("value", value)
        if not slider.min <= value <= slider.max:
            raise ValueError(f"value must be in [{slider.min:.4g}, {slider.max:.4g}] for "
                             f"mode={mode!r}; got {value!r}")
        slider.value = value
    slider.layout = ipywidgets.Layout(width="480px")
    return slider


def _pruned_numbers(model: nn.Module, masks: Mapping, layers: list[str], subset: Any,
                    device: Any) -> dict:
    """Masks applied to a copy of ``model``: its sparsity over ``layers``, its accuracy on
    ``subset`` and the blocks cut."""
    pruned = pruning.apply_masks(copy.deepcopy(model), masks)
    report = pruning.sparsity_report(pruned, layers=layers)
    return {"masks": masks, "report": report, "pruned_pct": report["total"]["pruned_pct"],
            "accuracy": train.evaluate(pruned, subset, device=device),
            "blocks": sum(keep.numel() for keep in masks.values()),
            "blocks_pruned": sum(int((~keep).sum()) for keep in masks.values())}


def _threshold_label(state: Mapping, layers: list[str], where: str) -> str:
    """The numbers of one slider position as HTML."""
    v = state["value"]
    setting = f"q = {v:.2f}" if state["mode"] == "fraction" else f"delta = {v:.4f}"
    return (
        f"{setting}: <b>params pruned: {state['pruned_pct']:.2f}%</b> of the weights of "
        f"{', '.join(layers)} ({state['blocks_pruned']} of {state['blocks']} blocks); "
        f"<b>accuracy before fine-tuning: {100 * state['accuracy']:.2f}%</b> "
        f"(unpruned {100 * state['baseline_accuracy']:.2f}%; measured on {where})"
    )


def _explorer_box(slider: Any, label: Any, image: Any, state: dict, update: Any) -> Any:
    """Wire ``update`` to the slider, draw once, and return the VBox with its parts attached."""
    slider.observe(update, names="value")
    update()
    box = ipywidgets.VBox([slider, label, image])
    box.slider, box.label, box.image, box.state = slider, label, image, state
    return box
