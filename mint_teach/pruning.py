"""From dependences to masks, masks to sparse and smaller networks (docs/method.md sections 5-7).

The one mask convention of the toolkit: a mask acts on the *child* layer's weight of a layer
pair (parent, child). The child weight is ``(out, in)`` for ``nn.Linear`` and
``(out, in, kh, kw)`` for ``nn.Conv2d``; its rows are child units and its columns parent units.
When a child ``nn.Linear`` reads a flattened conv map, ``in = k * parent_units`` and parent
unit ``u`` owns columns ``u*k .. u*k + k - 1``.

Two mask forms go into :func:`apply_masks`:

- ``{(parent, child): keep}`` with a bool *block* mask ``keep`` of shape ``(G_c, G_p)``
  (``True`` = keep the block joining child group ``j`` and parent group ``i``);
- ``{child: keep}`` with a bool mask of the child weight's own shape.

MINT (:func:`masks_from_dependencies`), magnitude (:func:`magnitude_masks`) and random
(:func:`random_masks`) pruning all produce these dicts through the same thresholding.
The groups behind a block mask (section 3) come from :mod:`mint_teach.groups`.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import prune

from ._validation import check_blocks, check_choice, check_count, check_fraction, check_number
from .groups import group_ids, layer_units, resolve_groups, split_groups
from .models import MLP, VGG, BasicBlock, ResNetCifar, layer_pairs, prunable_layers

__all__ = [
    "apply_masks",
    "compact",
    "count_params",
    "dead_units",
    "expand_block_mask",
    "format_report",
    "inference_time",
    "global_threshold",
    "magnitude_masks",
    "masks_from_dependencies",
    "model_size_mb",
    "pooled_dependences",
    "random_masks",
    "sparsity_report",
    "unit_groups",
]

Pair = tuple[str, str]


# ----------------------------------------------------------------------------- groups (section 3)

def unit_groups(n_units: int, n_groups: int) -> list[range]:
    """:func:`mint_teach.groups.split_groups` as ranges of unit indices (docs/method.md section 3).

    Examples
    --------
    >>> unit_groups(10, 3)
    [range(0, 4), range(4, 7), range(7, 10)]
    """
    return [range(a, b) for a, b in split_groups(n_units, n_groups)]


# ----------------------------------------------------------------------------- masks (section 5)

def masks_from_dependencies(
    dependencies: Mapping[Pair, torch.Tensor],
    *,
    prune_fraction: float | None = None,
    threshold: float | None = None,
    max_pair_fraction: float = 0.75,
) -> dict[Pair, torch.Tensor]:
    """Turn dependency matrices into keep-masks with one global threshold (docs/method.md 5).

    Block ``(j, i)`` of a pair is pruned when ``D[j, i] <= delta``. ``delta`` is either the
    ``prune_fraction``-quantile of all values of all pairs, or the given ``threshold``. With a
    fraction, exactly ``round(q * blocks)`` blocks are pruned over all pairs: estimates are
    counts, so many values can tie at ``delta``, and ties are broken by pair order and flat
    index instead of pruning them all. A pair that would lose more than ``max_pair_fraction`` of its blocks instead
    loses exactly ``floor(max_pair_fraction * blocks)`` of them: its lowest values, ties going
    to the lower flat index. ``prune_fraction=0`` prunes nothing.

    Parameters
    ----------
    dependencies : dict ``{(parent, child): D}`` with ``D`` of shape ``(G_c, G_p)``.
    prune_fraction : the quantile ``q`` in ``[0, 1]`` (give this or ``threshold``).
    threshold : an explicit ``delta`` (give this or ``prune_fraction``).
    max_pair_fraction : the per-pair cap in ``[0, 1]`` (published default 0.75).

    Returns
    -------
    dict ``{(parent, child): keep}``, ``keep`` a bool tensor ``(G_c, G_p)``, ``True`` = keep.

    Examples
    --------
    >>> D = {("a", "b"): torch.tensor([[0.1, 0.9], [0.5, 0.3]])}
    >>> masks_from_dependencies(D, threshold=0.3)[("a", "b")]
    tensor([[False,  True],
            [ True, False]])
    """
    if (prune_fraction is None) == (threshold is None):
        raise ValueError(
            "give exactly one of prune_fraction (a quantile in [0, 1]) or threshold (a value); "
            f"got prune_fraction={prune_fraction!r}, threshold={threshold!r}"
        )
    cap = check_fraction("max_pair_fraction", max_pair_fraction)
    scores = _check_dependencies(dependencies)

    if threshold is not None:
        delta = check_number("threshold", threshold)
        pruned = {key: d <= delta for key, d in scores.items()}
    else:
        q = check_fraction("prune_fraction", prune_fraction)
        values = _pool(scores)
        chosen = torch.zeros(values.numel(), dtype=torch.bool)
        chosen[torch.sort(values, stable=True).indices[:round(q * values.numel())]] = True
        pruned, start = {}, 0
        for key, d in scores.items():
            pruned[key] = chosen[start:start + d.numel()].view_as(d).to(d.device)
            start += d.numel()

    masks = {}
    for key, d in scores.items():
        prune_here = pruned[key]
        limit = int(cap * d.numel())  # floor: the most blocks this pair may lose
        if int(prune_here.sum()) > limit:
            order = torch.sort(d.flatten(), stable=True).indices
            prune_here = torch.zeros(d.numel(), dtype=torch.bool, device=d.device)
            prune_here[order[:limit]] = True
            prune_here = prune_here.view_as(d)
        masks[key] = ~prune_here
    return masks


def pooled_dependences(dependencies: Mapping[Pair, torch.Tensor]) -> torch.Tensor:
    """Every ``D[j, i]`` of every pair in one float64 CPU vector (docs/method.md section 5).

    Pairs come in the dict's order, each matrix row by row: the order in which
    :func:`masks_from_dependencies` breaks ties between equal values.

    Examples
    --------
    >>> D = {("a", "b"): torch.tensor([[0.1, 0.9], [0.5, 0.3]]), ("b", "c"): torch.tensor([[0.2]])}
    >>> pooled_dependences(D)
    tensor([0.1000, 0.9000, 0.5000, 0.3000, 0.2000], dtype=torch.float64)
    """
    return _pool(_check_dependencies(dependencies))


def global_threshold(dependencies: Mapping[Pair, torch.Tensor], prune_fraction: float) -> float:
    """The global threshold delta: the ``prune_fraction``-quantile of every D of every pair.

    Section 5: one threshold for the whole network, with linear interpolation between
    neighbours (``numpy.quantile``'s default). ``masks_from_dependencies(dependencies,
    prune_fraction=q)`` ranks the same :func:`pooled_dependences` and cuts the lowest
    ``round(q * blocks)`` (before the per-pair cap): the blocks at or below delta, with
    values that tie at delta settled by rank (pair order, then position) so that the count
    stays exact.

    Examples
    --------
    >>> D = {("a", "b"): torch.tensor([[0.1, 0.9], [0.5, 0.3]], dtype=torch.float64)}
    >>> global_threshold(D, 0.5)
    0.4
    """
    q = check_fraction("prune_fraction", prune_fraction)
    return float(torch.quantile(pooled_dependences(dependencies), q))


def _check_dependencies(dependencies) -> dict[Pair, torch.Tensor]:
    """A non-empty dict of matrices (G_c, G_p), or a ValueError naming what is wrong."""
    if not isinstance(dependencies, Mapping) or len(dependencies) == 0:
        raise ValueError(
            "dependencies must be a non-empty dict {(parent, child): D of shape (G_c, G_p)}; "
            f"got {dependencies!r:.80}"
        )
    return {key: check_blocks(f"dependencies[{key!r}]", value)
            for key, value in dependencies.items()}


def _pool(scores: Mapping[Pair, torch.Tensor]) -> torch.Tensor:
    return torch.cat([d.detach().flatten().double().cpu() for d in scores.values()])


def expand_block_mask(keep: torch.Tensor, weight_shape: Sequence[int],
                      parent_units: int) -> torch.Tensor:
    """Expand a ``(G_c, G_p)`` block mask to a bool mask of the child weight's shape (section 5).

    Rows are split into ``G_c`` groups of child units, the ``parent_units`` into ``G_p`` groups
    (:func:`mint_teach.groups.split_groups`); each parent unit owns ``weight_shape[1] //
    parent_units`` columns (more than one after a flatten) and a conv's kernel positions share
    their column's value.

    Examples
    --------
    >>> expand_block_mask(torch.tensor([[True, False]]), (2, 4), 2).int()
    tensor([[1, 1, 0, 0],
            [1, 1, 0, 0]], dtype=torch.int32)
    """
    keep = check_blocks("keep", keep) != 0
    shape = tuple(int(s) for s in weight_shape)
    parent_units = check_count("parent_units", parent_units, low=1)
    if len(shape) < 2:
        raise ValueError(f"weight_shape must have at least 2 dims (out, in, ...); got {shape}")
    g_c, g_p = keep.shape
    out, cols = shape[0], shape[1]
    if cols % parent_units:
        raise ValueError(
            f"weight_shape {shape} has {cols} input columns, not a multiple of "
            f"parent_units={parent_units}"
        )
    if g_c > out or g_p > parent_units:
        raise ValueError(
            f"block mask of shape {tuple(keep.shape)} (G_c, G_p) needs G_c <= {out} child units "
            f"and G_p <= {parent_units} parent units (weight_shape {shape})"
        )
    rows = group_ids(out, g_c).to(keep.device)                        # (out,)
    per_unit = group_ids(parent_units, g_p).to(keep.device)           # (parent_units,)
    col_ids = per_unit.repeat_interleave(cols // parent_units)        # (in,)
    full = keep[rows][:, col_ids]                                     # (out, in)
    return full.reshape(out, cols, *([1] * (len(shape) - 2))).expand(shape).clone()


# ----------------------------------------------------------------------------- apply (section 6)

def apply_masks(model: nn.Module, masks: Mapping) -> nn.Module:
    """Zero the masked child weights and keep them zero while fine-tuning (docs/method.md 5-6).

    ``masks`` maps ``(parent, child)`` to a ``(G_c, G_p)`` block mask, or a child layer name to
    a mask of its weight's shape (``True`` = keep). Masks on the same child are combined (AND).
    Each child weight is reparametrised with ``torch.nn.utils.prune.custom_from_mask``, so the
    optimiser updates ``weight_orig`` while ``weight = weight_orig * weight_mask`` stays exactly
    zero where masked; ``prune.remove`` bakes it in. A layer that already carries a mask keeps
    it: PyTorch multiplies the new mask into the old one. Returns the model (changed in place).
    """
    names = prunable_layers(model)
    modules = dict(model.named_modules())
    per_child: dict[str, torch.Tensor] = {}
    for key, value in masks.items():
        if isinstance(key, str):
            child = _check_layer(names, key)
            weight = modules[child].weight
            full = torch.as_tensor(value) != 0
            if tuple(full.shape) != tuple(weight.shape):
                raise ValueError(
                    f"mask for layer {child!r} has shape {tuple(full.shape)}; its weight has "
                    f"shape {tuple(weight.shape)}"
                )
        else:
            parent, child = _check_pair(model, key)
            weight = modules[child].weight
            n_parent = layer_units(model, parent)
            try:
                full = expand_block_mask(torch.as_tensor(value), weight.shape, n_parent)
            except ValueError as err:
                raise ValueError(f"mask for pair {(parent, child)!r}: {err}") from None
        full = full.to(weight.device)
        per_child[child] = full if child not in per_child else per_child[child] & full
    for child, full in per_child.items():
        prune.custom_from_mask(modules[child], "weight", full)
    return model


# ----------------------------------------------------------------------------- report (section 7)

def sparsity_report(model: nn.Module, layers: Sequence[str] | None = None) -> dict:
    """Count zero weights per layer and in total, as the paper reports them (docs/method.md 7).

    Only the *weights* of the listed layers (default: all prunable layers) are counted, not
    biases or batch-norm parameters. ``memory_mb`` is the paper's "memory after": non-zero
    weights times 4 bytes (float32) / 1e6, e.g. 5,700 non-zero weights -> 0.0228 MB. Works
    with or without ``torch.nn.utils.prune``: it reads ``module.weight``, the masked tensor.

    Returns
    -------
    ``{"layers": {name: row}, "total": row}``; each row has ``params``, ``zeros``,
    ``nonzero``, ``pruned_pct`` (0-100) and ``memory_mb``.
    """
    names = prunable_layers(model)
    layers = names if layers is None else [_check_layer(names, n) for n in layers]
    modules = dict(model.named_modules())
    rows = {}
    for name in layers:
        weight = modules[name].weight.detach()
        rows[name] = _row(weight.numel(), int((weight == 0).sum()))
    total = _row(sum(r["params"] for r in rows.values()), sum(r["zeros"] for r in rows.values()))
    return {"layers": rows, "total": total}


def _row(params: int, zeros: int) -> dict:
    nonzero = params - zeros
    return {
        "params": params,
        "zeros": zeros,
        "nonzero": nonzero,
        "pruned_pct": 100.0 * zeros / params if params else 0.0,
        "memory_mb": nonzero * 4 / 1e6,
    }


def format_report(report: dict) -> str:
    """Render a :func:`sparsity_report` as a small text table (docs/method.md section 7)."""
    head = f"{'layer':<24}{'params':>12}{'non-zero':>12}{'pruned %':>10}{'memory MB':>11}"
    lines = [head, "-" * len(head)]
    items = [*report["layers"].items(), ("total", report["total"])]
    for k, (name, r) in enumerate(items):
        if k == len(items) - 1:
            lines.append("-" * len(head))
        lines.append(f"{name:<24}{r['params']:>12,}{r['nonzero']:>12,}"
                     f"{r['pruned_pct']:>10.2f}{r['memory_mb']:>11.4f}")
    return "\n".join(lines)


def count_params(model: nn.Module) -> int:
    """Number of parameter elements (all of them, zeros included; section 7)."""
    return sum(p.numel() for p in model.parameters())


def model_size_mb(model: nn.Module) -> float:
    """Bytes of the model's parameters / 1e6, as stored (section 7); buffers are not counted."""
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6



def inference_time(model: nn.Module, example: torch.Tensor, *, repeats: int = 20) -> float:
    """Median milliseconds of one forward pass of ``example`` (eval mode, no grad; section 7).

    The third figure of a pruned network's report, beside :func:`count_params` and
    :func:`model_size_mb`: masked weights are multiplied like any other, so only a
    :func:`compact` network is faster. One warm-up pass is not timed.
    """
    repeats = check_count("repeats", repeats, low=1)
    model.eval()
    times = []
    with torch.no_grad():
        model(example)
        for _ in range(repeats):
            start = time.perf_counter()
            model(example)
            times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[len(times) // 2]

# ----------------------------------------------------------------------------- compact (section 5)

def compact(model: nn.Module) -> nn.Module:
    """Return a smaller dense copy with dead units removed physically (docs/method.md section 5).

    A parent unit is dead when every outgoing connection in its child's (masked) weight is zero;
    its row and bias, its batch-norm entries and its column(s) in the child are removed. Deaths
    cascade backwards through a chain: connections into a removed unit do not count. Supported:
    ``MLP``, ``VGG``, ``ClassroomCNN`` (a chain of prunable layers) and ``ResNetCifar`` (only the
    channels inside each basic block, between ``conv1`` and ``conv2``, since block outputs must
    match the skip connection) and any model with ``layer_pairs`` found from its module graph
    (``models.ResNet50``, :func:`mint_teach.models.attach_structure`), where every pair's
    parent feeds its child alone, so the channels a skip path adds to are never cut. At
    least one unit of every layer is kept. Masks are baked in;
    ``model`` is not changed; in eval mode both give the same outputs.
    """
    if getattr(model, "layer_pairs", None) is not None:  # found from the module graph
        pairs = layer_pairs(model)
    elif isinstance(model, ResNetCifar):
        pairs = [(f"{name}.conv1", f"{name}.conv2") for name, m in model.named_modules()
                 if isinstance(m, BasicBlock)]
    elif isinstance(model, (MLP, VGG)):  # ClassroomCNN is a VGG
        pairs = layer_pairs(model)
    else:
        raise TypeError(
            "compact supports mint_teach.models MLP, VGG, ClassroomCNN, ResNetCifar and models "
            "with layer_pairs (ResNet50, models.attach_structure); "
            f"got {type(model).__name__}"
        )
    _refresh_pruned(model)
    small = copy.deepcopy(model)
    _bake(small)
    modules = dict(small.named_modules())

    # Which units survive: walk the pairs backwards so deaths cascade through a chain.
    alive: dict[str, torch.Tensor] = {}
    for parent, child in reversed(pairs):
        weight = modules[child].weight.detach().cpu()
        rows = alive.get(child, torch.ones(weight.shape[0], dtype=torch.bool))
        keep = ~dead_units(weight, layer_units(small, parent), live_rows=rows)
        if not keep.any():
            keep[0] = True
        alive[parent] = keep

    bns = _batchnorm_after(small)
    for parent, child in pairs:
        keep = alive[parent]
        if bool(keep.all()):
            continue
        _replace(small, parent, _slice_layer(small.get_submodule(parent), out_keep=keep))
        if parent in bns:
            _replace(small, bns[parent], _slice_batchnorm(small.get_submodule(bns[parent]), keep))
        new_child = small.get_submodule(child)
        n_in = new_child.weight.shape[1]
        cols = keep.repeat_interleave(n_in // keep.numel())
        _replace(small, child, _slice_layer(new_child, in_keep=cols))
    return small


def dead_units(weight: torch.Tensor, parent_units: int, *,
               live_rows: torch.Tensor | None = None) -> torch.Tensor:
    """Which parent units of a pair have no non-zero outgoing weight left (section 5).

    ``weight`` is the child layer's (masked) weight, ``(out, in)`` or ``(out, in, kh, kw)``;
    parent unit ``u`` owns its column block ``u*k .. u*k + k - 1`` with ``k = in //
    parent_units``. Only the child rows in ``live_rows`` (a bool vector, default all) count,
    so :func:`compact` can let deaths cascade. Returns a bool vector ``(parent_units,)``,
    ``True`` = dead.

    Examples
    --------
    >>> w = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])
    >>> dead_units(w, 3)
    tensor([False,  True, False])
    >>> dead_units(w, 3, live_rows=torch.tensor([False, True]))
    tensor([ True,  True, False])
    """
    weight = torch.as_tensor(weight).detach()
    parent_units = check_count("parent_units", parent_units)
    if weight.dim() not in (2, 4) or weight.shape[1] % parent_units:
        raise ValueError(f"weight must be a child weight (out, in) or (out, in, kh, kw) whose "
                         f"in = {weight.shape[1] if weight.dim() > 1 else '?'} is a multiple of "
                         f"parent_units = {parent_units}; got shape {tuple(weight.shape)}")
    used = (weight.reshape(weight.shape[0], parent_units, -1) != 0).any(dim=2)  # (out, units)
    if live_rows is not None:
        live_rows = torch.as_tensor(live_rows, dtype=torch.bool, device=used.device)
        if live_rows.shape != (weight.shape[0],):
            raise ValueError(f"live_rows must be a bool vector with one entry per child row "
                             f"({weight.shape[0]}); got shape {tuple(live_rows.shape)}")
        used = used[live_rows]
    return ~used.any(dim=0)


def _refresh_pruned(model: nn.Module) -> None:
    """Recompute pruned tensors without autograd history so that ``deepcopy`` accepts them."""
    with torch.no_grad():
        for module in model.modules():
            for hook in list(module._forward_pre_hooks.values()):
                if isinstance(hook, prune.BasePruningMethod):
                    setattr(module, hook._tensor_name, hook.apply_mask(module))


def _bake(model: nn.Module) -> None:
    """Make every pruned tensor a plain parameter again (``prune.remove``)."""
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)


def _batchnorm_after(model: nn.Module) -> dict[str, str]:
    """Map each prunable layer to the batch norm that follows it before the next prunable layer."""
    names = set(prunable_layers(model))
    found, current = {}, None
    for name, module in model.named_modules():
        if name in names:
            current = name
        elif current and isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            found[current] = name
            current = None
    return found


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    owner, _, attr = name.rpartition(".")
    setattr(model.get_submodule(owner) if owner else model, attr, new)


def _slice_layer(layer: nn.Module, out_keep: torch.Tensor | None = None,
                 in_keep: torch.Tensor | None = None) -> nn.Module:
    """A new Linear/Conv2d holding only the kept output rows and input columns."""
    weight = layer.weight.detach()
    out_idx = torch.arange(weight.shape[0]) if out_keep is None else out_keep.nonzero().flatten()
    in_idx = torch.arange(weight.shape[1]) if in_keep is None else in_keep.nonzero().flatten()
    has_bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        new = nn.Linear(len(in_idx), len(out_idx), bias=has_bias)
    elif isinstance(layer, nn.Conv2d):
        if layer.groups != 1:
            raise ValueError(f"compact does not support grouped convolutions; got {layer}")
        new = nn.Conv2d(len(in_idx), len(out_idx), layer.kernel_size, stride=layer.stride,
                        padding=layer.padding, dilation=layer.dilation, bias=has_bias,
                        padding_mode=layer.padding_mode)
    else:
        raise TypeError(f"compact can slice nn.Linear and nn.Conv2d; got {type(layer).__name__}")
    new = new.to(device=weight.device, dtype=weight.dtype).train(layer.training)
    with torch.no_grad():
        new.weight.copy_(weight[out_idx.to(weight.device)][:, in_idx.to(weight.device)])
        if has_bias:
            new.bias.copy_(layer.bias.detach()[out_idx.to(weight.device)])
    return new


def _slice_batchnorm(bn: nn.Module, keep: torch.Tensor) -> nn.Module:
    """A new batch norm holding only the kept channels (affine parameters and running stats)."""
    idx = keep.nonzero().flatten()
    new = type(bn)(len(idx), eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                   track_running_stats=bn.track_running_stats)
    ref = bn.weight if bn.affine else bn.running_mean
    if ref is not None:
        new = new.to(device=ref.device, dtype=ref.dtype)
        idx = idx.to(ref.device)
    new.train(bn.training)
    with torch.no_grad():
        if bn.affine:
            new.weight.copy_(bn.weight[idx])
            new.bias.copy_(bn.bias[idx])
        if bn.track_running_stats:
            new.running_mean.copy_(bn.running_mean[idx])
            new.running_var.copy_(bn.running_var[idx])
            new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new


# ----------------------------------------------------------------------------- baselines

def magnitude_masks(
    model: nn.Module,
    pairs: Sequence[Pair] | None = None,
    *,
    prune_fraction: float,
    granularity: str = "block",
    groups: int | tuple[int, int] | Mapping | None = None,
    max_pair_fraction: float = 0.75,
) -> dict:
    """Magnitude-pruning masks, the baseline MINT is compared with (docs/method.md section 5).

    ``granularity="block"``: each block ``(j, i)`` of a child weight is scored by the mean
    absolute weight in it, and the scores go through :func:`masks_from_dependencies` exactly as
    MINT's dependences do; needs ``groups`` in any form :func:`mint_teach.groups.resolve_groups`
    reads (an int, one ``(G_c, G_p)`` for every pair, a dict by child or by pair). Returns
    ``{(parent, child): (G_c, G_p) keep}``.
    ``granularity="unstructured"``: every single weight of the child layers is its own block
    (one global magnitude quantile, the same per-layer cap). Returns ``{child: keep}`` masks of
    the weight's shape. ``pairs`` defaults to all adjacent pairs.
    """
    pairs = layer_pairs(model, pairs)
    modules = dict(model.named_modules())
    if check_choice("granularity", granularity, ("block", "unstructured")) == "unstructured":
        scores = {(p, c): modules[c].weight.detach().abs().reshape(modules[c].weight.shape[0], -1)
                  for p, c in pairs}
        keep = masks_from_dependencies(scores, prune_fraction=prune_fraction,
                                       max_pair_fraction=max_pair_fraction)
        return {c: keep[(p, c)].reshape(modules[c].weight.shape) for p, c in pairs}
    sizes = resolve_groups(model, pairs, groups)
    scores = {}
    for parent, child in pairs:
        g_c, g_p = sizes[(parent, child)]
        weight = modules[child].weight.detach().abs()
        n_parent = layer_units(model, parent)
        per_unit = weight.reshape(weight.shape[0], n_parent, -1).sum(dim=2)  # (out, n_parent)
        rows = group_ids(weight.shape[0], g_c).to(weight.device)
        cols = group_ids(n_parent, g_p).to(weight.device)
        block_sum = torch.zeros(g_c, n_parent, dtype=weight.dtype, device=weight.device)
        block_sum.index_add_(0, rows, per_unit)
        block_sum = torch.zeros(g_c, g_p, dtype=weight.dtype,
                                device=weight.device).index_add_(1, cols, block_sum)
        count = (torch.bincount(rows, minlength=g_c)[:, None]
                 * torch.bincount(cols, minlength=g_p)[None, :] * (weight[0].numel() // n_parent))
        scores[(parent, child)] = block_sum / count
    return masks_from_dependencies(scores, prune_fraction=prune_fraction,
                                   max_pair_fraction=max_pair_fraction)


def random_masks(
    model: nn.Module,
    pairs: Sequence[Pair] | None = None,
    *,
    prune_fraction: float,
    groups: int | tuple[int, int] | Mapping,
    seed: int = 0,
    max_pair_fraction: float = 0.75,
) -> dict[Pair, torch.Tensor]:
    """Random block masks: uniform scores through the same thresholding (docs/method.md, section 5).

    The control experiment: if MINT's dependences carry information, MINT should beat this at
    the same ``prune_fraction`` and ``groups`` (any form of
    :func:`mint_teach.groups.resolve_groups`). Returns ``{(parent, child): (G_c, G_p) keep}``.
    """
    pairs = layer_pairs(model, pairs)
    sizes = resolve_groups(model, pairs, groups)
    generator = torch.Generator().manual_seed(check_count("seed", seed, low=0))
    scores = {pair: torch.rand(sizes[pair], generator=generator) for pair in pairs}
    return masks_from_dependencies(scores, prune_fraction=prune_fraction,
                                   max_pair_fraction=max_pair_fraction)


# ----------------------------------------------------------------------------- validation helpers

def _check_layer(names: list[str], name) -> str:
    if name not in names:
        raise KeyError(f"layer {name!r} is not a prunable layer; valid layers are {names}")
    return name


def _check_pair(model: nn.Module, key) -> Pair:
    if not isinstance(key, tuple) or len(key) != 2:
        raise ValueError(f"mask keys must be a layer name or a (parent, child) tuple; got {key!r}")
    return layer_pairs(model, [key])[0]  # known layers, and the parent feeds the child
