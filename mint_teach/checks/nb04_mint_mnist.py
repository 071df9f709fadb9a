"""Notebook 04 (MINT on MNIST): the exercises' checkers.

``check_groups``: contiguous unit groups (section 3); ``check_threshold``: the global threshold
delta for a prune fraction q (section 5).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .common import (
    _say, _missing, _Unreadable, _number, _close, _first_match, _rounded, _count, _indices,
)

__all__ = ["check_groups", "check_threshold"]


def _as_bounds(answer: Any) -> list[tuple[int, int]] | str:
    """Groups as (start, stop) pairs; accepts ranges, (start, stop) pairs or index lists.

    Returns a message string when the answer cannot be read as contiguous groups.
    """
    if isinstance(answer, (str, bytes)) or not isinstance(answer, (Sequence, np.ndarray)):
        return (f"expected a list of groups (ranges, (start, stop) pairs or lists of unit "
                f"indices); got {type(answer).__name__}.")
    bounds = []
    for k, group in enumerate(answer):
        if isinstance(group, range):
            if group.step != 1:
                return f"group {k} is {group}; groups are contiguous runs with step 1."
            bounds.append((group.start, group.stop))
            continue
        items = _indices(group)
        if isinstance(items, str):
            return f"group {k} is {group!r:.40}: {items}"
        if isinstance(group, tuple):  # (start, stop), as groups.split_groups gives them
            if len(items) != 2 or items[1] <= items[0]:
                return (f"group {k} is {group!r}; a tuple is read as (start, stop) with "
                        "start < stop (use a list for unit indices).")
            bounds.append((items[0], items[1]))
            continue
        if not items:
            return f"group {k} is empty; every group needs at least one unit."
        if items != list(range(items[0], items[0] + len(items))):
            return (f"group {k} is not a contiguous run of unit indices ({items[:6]}"
                    f"{' ...' if len(items) > 6 else ''}); section 3 cuts each layer into "
                    "contiguous runs.")
        bounds.append((items[0], items[-1] + 1))
    return bounds



def check_groups(n_units: int, n_groups: int, answer: Any) -> bool:
    """Check a split of ``n_units`` units into ``n_groups`` contiguous groups (section 3).

    Sizes differ by at most one, the larger groups first, as ``groups.split_groups`` and
    ``pruning.unit_groups`` cut them. Groups may be given as ranges, ``(start, stop)`` tuples
    or lists of unit indices.
    """
    from ..groups import split_groups

    if _missing(answer):
        return False
    try:
        n_units, n_groups = _count(n_units, "n_units"), _count(n_groups, "n_groups")
    except _Unreadable as err:
        return _say(False, f"check_groups(n_units, n_groups, answer): {err}")
    if not 1 <= n_groups <= n_units:
        return _say(False, f"check_groups needs 1 <= n_groups <= n_units; got n_units = "
                           f"{n_units}, n_groups = {n_groups}.")
    ref = split_groups(n_units, n_groups)
    bounds = _as_bounds(answer)
    if isinstance(bounds, str):
        return _say(False, bounds)
    if bounds == ref:
        sizes = sorted({b - a for a, b in ref}, reverse=True)
        return _say(True, f"{n_groups} contiguous groups of {' or '.join(map(str, sizes))} "
                          f"units covering 0..{n_units - 1}.")
    if len(bounds) != n_groups:
        return _say(False, f"expected {n_groups} groups; got {len(bounds)}.")
    covered = [u for a, b in bounds for u in range(a, b)]
    if covered != list(range(n_units)):
        if len(covered) != len(set(covered)):
            return _say(False, "some units belong to two groups; every unit belongs to "
                               "exactly one.")
        return _say(False, f"the groups must cover the units 0..{n_units - 1} in order, each "
                           f"once; they cover {len(set(covered))} units"
                           f"{' out of order' if len(set(covered)) == n_units else ''}.")
    sizes = [b - a for a, b in bounds]
    if max(sizes) - min(sizes) > 1:
        return _say(False, f"group sizes range from {min(sizes)} to {max(sizes)}; they may "
                           "differ by at most one (divmod(n_units, n_groups) tells how many "
                           "get one extra unit).")
    return _say(False, "a valid split, but the toolkit puts the larger groups first (like "
                       "numpy.array_split), so masks line up with mt.mi.split_groups.")


def check_threshold(dependencies: Mapping, q: float, answer: Any) -> bool:
    """Check the global threshold delta: the q-quantile of *all* dependences of all layer pairs,
    with linear interpolation (section 5; ``pruning.global_threshold``)."""
    from .. import pruning

    if _missing(answer):
        return False
    q = float(q)
    if not 0 <= q <= 1:
        raise ValueError(f"q must lie in [0, 1]; got {q!r}")
    values = pruning.pooled_dependences(dependencies)  # ValueError for a bad dict
    ref = pruning.global_threshold(dependencies, q)
    try:
        value = _number(answer, "a number (the threshold delta)")
    except _Unreadable as err:
        return _say(False, str(err))
    spread = float(values.max() - values.min()) or 1.0
    tol = {"atol": 1e-9 * spread + 1e-12, "rtol": 1e-6}
    if _close(value, ref, **tol):
        return _say(True, _threshold_verdict(dependencies, q, values, ref))
    hint = _first_match(value, _threshold_slips(dependencies, q, values), **tol)
    if hint:
        return _say(False, hint)
    values = values.numpy()
    rough = [float(np.quantile(values, q, method=m)) for m in ("lower", "higher", "nearest")]
    if _rounded(value, ref):
        return _say(False, _rounded(value, ref))
    if any(_close(value, r, **tol) for r in rough) or min(rough) <= value <= max(rough):
        return _say(False, "almost: the right values, but use linear interpolation between "
                           "neighbours (numpy.quantile's default, or torch.quantile).")
    return _say(False, f"you gave {value:.5f}, but the {q:g}-quantile of all {values.size} "
                       f"dependences is {ref:.5f}. Concatenate every D, then take the quantile.")


def _threshold_verdict(dependencies: Mapping, q: float, values: torch.Tensor, ref: float) -> str:
    """What the masks do with delta: how many blocks they cut, and why that may differ from
    the number of values at or below delta."""
    from .. import pruning

    masks = pruning.masks_from_dependencies(dependencies, prune_fraction=q, max_pair_fraction=1.0)
    cut = sum(int((~keep).sum()) for keep in masks.values())
    at_most, ranked = int((values <= ref).sum()), values.sort().values
    tied = 0 < cut < values.numel() and bool(ranked[cut - 1] == ranked[cut])
    if at_most == cut:
        ties = ""
    elif at_most > cut and tied:
        ties = (f" {at_most} blocks have D <= delta because values tie at delta; the toolkit "
                f"breaks the tie (pair order, then position) so that exactly {cut} are cut.")
    else:
        ties = (f" {at_most} blocks have D <= delta; the toolkit ranks every value (ties by "
                f"pair order, then position) and cuts exactly the lowest {cut}.")
    return f"delta = {ref:.5f}; MINT cuts round(q x {values.numel()}) = {cut} blocks.{ties}"


def _threshold_slips(dependencies: Mapping, q: float,
                     values: torch.Tensor) -> list[tuple[float, str]]:
    """The usual wrong thresholds, each with what it is."""
    from .. import pruning

    slips = []
    if len(dependencies) > 1:
        for key, d in dependencies.items():
            slips.append((pruning.global_threshold({key: d}, q),
                          (f"that is the quantile of pair {key} alone; MINT takes one global "
                           "threshold over the values of every layer pair.")))
    if q != 0.5:
        slips.append((pruning.global_threshold(dependencies, 1 - q),
                      ("that is the (1 - q)-quantile; blocks with D <= delta are pruned, so "
                       "delta is the q-quantile.")))
    slips.append((float(values.mean()), "that is the mean; delta is the q-quantile."))
    return slips
