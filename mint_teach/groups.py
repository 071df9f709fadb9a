"""Unit groups: how a layer's units are cut into groups, and how many each pair gets (section 3).

docs/method.md section 3: each layer's units are cut into contiguous runs whose sizes differ by
at most one, the larger runs first; when the child is the output layer, each class is its own
group. This module is the one home of that step:

- :func:`split_groups`: the runs, as ``(start, stop)`` pairs;
- :func:`group_ids`: the group index of every unit;
- :func:`layer_units`: a layer's unit count (``out_features`` / ``out_channels``);
- :func:`resolve_groups`: every accepted form of a ``groups`` argument, in the one form below;
- :func:`groups_per_layer`: about a fixed number of units a group, for wide conv nets.

The key convention, used by every dependency matrix and block mask of the toolkit::

    {(parent, child): (child_groups, parent_groups)}     i.e.  {(parent, child): (G_c, G_p)}

``(G_c, G_p)`` is the shape of the pair's dependency matrix ``D`` and of its block mask: rows
are child groups, columns parent groups. A ``groups`` argument may be given as

- an int ``g``: ``min(g, units)`` groups in every layer, and one group per class (unit) when
  the child is the output layer (``MintConfig(groups=20)``);
- a ``(G_c, G_p)`` tuple: those counts for every pair, as given (``groups=(20, 20)``);
- a dict by child layer ``{child: (G_c, G_p)}`` (``MintConfig.groups``, :func:`groups_per_layer`);
- a dict by pair ``{(parent, child): (G_c, G_p)}`` (the form :func:`resolve_groups` returns).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ._validation import ArgumentTypeError, check_count
from .models import layer_pairs, prunable_layers

__all__ = [
    "check_groups_arg",
    "group_ids",
    "groups_per_layer",
    "layer_units",
    "resolve_groups",
    "split_groups",
]

Pair = tuple[str, str]

_FORMS = ("a positive int, a (G_c, G_p) tuple, a dict {child: (G_c, G_p)} or a dict "
          "{(parent, child): (G_c, G_p)}")


def split_groups(n_units: int, n_groups: int) -> list[tuple[int, int]]:
    """Split ``n_units`` unit indices into ``n_groups`` contiguous ``(start, stop)`` runs.

    Section 3: sizes differ by at most one, the larger groups first, as
    ``numpy.array_split`` does.

    Examples
    --------
    >>> split_groups(10, 3)
    [(0, 4), (4, 7), (7, 10)]
    """
    n_units = check_count("n_units", n_units)
    n_groups = check_count("n_groups", n_groups, high=n_units, high_means="the number of units")
    size, extra = divmod(n_units, n_groups)
    bounds, start = [], 0
    for group in range(n_groups):
        stop = start + size + (1 if group < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def group_ids(n_units: int, n_groups: int) -> torch.Tensor:
    """Group index of every unit, a long tensor of shape ``(n_units,)`` (section 3).

    Examples
    --------
    >>> group_ids(5, 2)
    tensor([0, 0, 0, 1, 1])
    """
    sizes = torch.tensor([stop - start for start, stop in split_groups(n_units, n_groups)])
    return torch.repeat_interleave(torch.arange(n_groups), sizes)


def layer_units(model: nn.Module, name: str) -> int:
    """Number of units of layer ``name``: ``out_features`` of a Linear, ``out_channels`` of a conv.

    Examples
    --------
    >>> layer_units(nn.Sequential(nn.Linear(4, 3)), "0")
    3
    """
    try:
        module = model.get_submodule(name)
    except AttributeError:
        raise KeyError(f"layer {name!r} is not in the model") from None
    for attr in ("out_features", "out_channels"):
        if hasattr(module, attr):
            return int(getattr(module, attr))
    raise TypeError(f"layer {name!r} ({type(module).__name__}) has no out_features/out_channels")


def _pair_counts(where: str, value: Any) -> tuple[int, int]:
    """One ``(G_c, G_p)`` entry of a groups argument: two positive ints."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ArgumentTypeError(f"{where} must be (G_c, G_p), two positive ints; got {value!r}")
    return (check_count(f"{where} G_c", value[0]), check_count(f"{where} G_p", value[1]))


def check_groups_arg(groups: Any) -> str:
    """Check the form of a groups argument without a model and say which form it is.

    Returns ``"count"``, ``"tuple"``, ``"by_child"`` or ``"by_pair"`` (see the module
    docstring). Every count must be a positive int; a wrong form is an ``ArgumentTypeError``
    (a TypeError and a ValueError) naming ``groups``.

    Examples
    --------
    >>> check_groups_arg(20), check_groups_arg((20, 10)), check_groups_arg({"fc2": (10, 20)})
    ('count', 'tuple', 'by_child')
    """
    if groups is None:
        raise ValueError(f"groups is required: {_FORMS}; got None")
    if isinstance(groups, Mapping):
        keys = list(groups)
        if all(isinstance(k, str) for k in keys) and keys:
            form = "by_child"
        elif all(isinstance(k, tuple) and len(k) == 2 for k in keys):
            form = "by_pair"
        else:
            raise ArgumentTypeError(f"groups keys must be all child layer names or all "
                                    f"(parent, child) pairs; got {keys!r}")
        for key, value in groups.items():
            _pair_counts(f"groups[{key!r}]", value)
        return form
    if isinstance(groups, Sequence) and not isinstance(groups, (str, bytes)):
        _pair_counts("groups", groups)
        return "tuple"
    if isinstance(groups, str):
        raise ArgumentTypeError(f"groups must be {_FORMS}; got {groups!r} of type str")
    check_count("groups", groups)
    return "count"


def _entry(groups: Any, form: str, pair: Pair, pairs: list[Pair]) -> tuple[int, int]:
    """The ``(G_c, G_p)`` a tuple or a dict gives ``pair``; KeyError when a dict has none."""
    if form == "tuple":
        return tuple(groups)
    if form == "by_pair":
        if pair not in groups:
            raise KeyError(f"groups has no entry for pair {pair!r}; it has {list(groups)}")
        return tuple(groups[pair])
    if pair[1] not in groups:
        raise KeyError(f"groups has no entry for child layer {pair[1]!r}; "
                       f"give one for each of {[c for _, c in pairs]}")
    return tuple(groups[pair[1]])


def resolve_groups(model: nn.Module, pairs: Sequence[Pair], groups: Any
                   ) -> dict[Pair, tuple[int, int]]:
    """``{(parent, child): (G_c, G_p)}`` for every pair, from any accepted form (section 3).

    ``groups`` is an int, a ``(G_c, G_p)`` tuple, a dict by child layer or a dict by pair
    (module docstring). An int gives ``min(groups, units)`` groups per layer and one group per
    class when the child is the model's last prunable layer; the other forms are taken as
    given, and must not ask for more groups than a layer has units.

    Raises
    ------
    ValueError, TypeError
        A count that is not a positive int, a wrong form, or more groups than units.
    KeyError
        A dict without an entry for one of ``pairs``.
    """
    form = check_groups_arg(groups)
    pairs = [(parent, child) for parent, child in pairs]
    output = prunable_layers(model)[-1] if form == "count" else None
    sizes = {}
    for pair in pairs:
        n_child, n_parent = layer_units(model, pair[1]), layer_units(model, pair[0])
        if form == "count":
            g_c = n_child if pair[1] == output else min(groups, n_child)
            sizes[pair] = (g_c, min(groups, n_parent))
            continue
        g_c, g_p = (int(v) for v in _entry(groups, form, pair, pairs))
        if g_c > n_child or g_p > n_parent:
            raise ValueError(f"groups {(g_c, g_p)} for pair {pair!r} exceed its unit counts "
                             f"(child {n_child}, parent {n_parent})")
        sizes[pair] = (g_c, g_p)
    return sizes


def groups_per_layer(model: nn.Module, pairs: Sequence[Pair] | None = None, *,
                     units_per_group: int = 16, min_groups: int = 4,
                     max_groups: int = 32) -> dict[str, tuple[int, int]]:
    """Per-layer group counts for wide conv nets: about ``units_per_group`` units a group.

    A layer of ``n`` units gets ``n // units_per_group`` groups, kept within
    ``[min_groups, max_groups]`` and at most ``n``. Returns ``{child: (G_c, G_p)}``, a dict by
    child layer for ``MintConfig(groups=...)`` or :func:`resolve_groups`; the output layer gets
    one group per class (section 3).
    """
    units_per_group = check_count("units_per_group", units_per_group)
    min_groups = check_count("min_groups", min_groups)
    max_groups = check_count("max_groups", max_groups)
    output = prunable_layers(model)[-1]

    def count(layer: str) -> int:
        units = layer_units(model, layer)
        return max(1, min(units, max(min_groups, min(max_groups, units // units_per_group))))

    return {child: (layer_units(model, child) if child == output else count(child), count(parent))
            for parent, child in layer_pairs(model, pairs)}
