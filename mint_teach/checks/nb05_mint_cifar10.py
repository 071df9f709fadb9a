"""Notebook 05 (MINT on CIFAR-10): the exercise's checker.

``check_dead_units``: the parent units with no connection left into the child layer
(section 5; what ``pruning.compact`` removes).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .common import _say, _missing, _Unreadable, _first_match, _count, _indices

__all__ = ["check_dead_units"]


def _is_scalar(answer: Any) -> bool:
    """A single number (Python, numpy, a 0-d tensor) rather than a collection of indices."""
    if isinstance(answer, (torch.Tensor, np.ndarray)):
        return answer.ndim == 0
    return isinstance(answer, (str, bytes)) or not isinstance(
        answer, (Sequence, set, frozenset, range))


def check_dead_units(model: torch.nn.Module, parent: str, child: str, answer: Any) -> bool:
    """Check the dead parent units of a layer pair: units whose every outgoing weight in the
    child layer is zero (section 5; ``pruning.dead_units``, what ``compact`` removes).
    ``answer`` is their number, or their indices."""
    from .. import pruning

    if _missing(answer):
        return False
    from ..groups import layer_units

    modules = dict(model.named_modules())
    for name in (parent, child):
        if name not in modules:
            raise KeyError(f"no layer {name!r} in the model")
    n_parent = layer_units(model, parent)
    weight = modules[child].weight.detach().cpu()
    dead = torch.nonzero(pruning.dead_units(weight, n_parent)).flatten().tolist()
    if _is_scalar(answer):
        try:
            value = _count(answer, "a count of dead units (or a list of their indices)")
        except _Unreadable as err:
            return _say(False, str(err))
        return _dead_count_verdict(modules, parent, child, n_parent, len(dead), value)
    given = _indices(answer)
    if isinstance(given, str):
        return _say(False, f"expected a count or a list of unit indices: {given}")
    given = sorted(set(given))
    if given == dead:
        return _say(True, f"units {given[:8]}{' ...' if len(given) > 8 else ''} of {parent} "
                          f"are dead ({len(given)} in all).")
    extra, missing = sorted(set(given) - set(dead)), sorted(set(dead) - set(given))
    return _say(False, f"{len(missing)} dead units missing (e.g. {missing[:3]}) and {len(extra)} "
                       f"live ones included (e.g. {extra[:3]}).")


def _dead_count_verdict(modules: Mapping, parent: str, child: str, n_parent: int, n_dead: int,
                        value: int) -> bool:
    """The verdict on a count of dead units, naming the usual slip when the count is off."""
    from .. import pruning

    if value == n_dead:
        if value == 0:
            return _say(True, f"none of the {n_parent} units of {parent} is dead: each keeps "
                              f"at least one connection into {child}.")
        return _say(True, f"{value} of the {n_parent} units of {parent} have no connection "
                          f"left into {child}; compact() can remove them.")
    weight = modules[child].weight.detach().cpu()
    dead_rows = int((~(weight.reshape(weight.shape[0], -1) != 0).any(dim=1)).sum())
    slips = [(n_parent - n_dead, ("you counted the units that are still alive; count "
                                  "those with *no* non-zero outgoing weight.")),
             (dead_rows, (f"you counted {child}'s rows (child units with no input left); a "
                          f"dead *parent* unit is a column block of {child}.weight that is "
                          "zero in every row."))]
    orig = getattr(modules[child], "weight_orig", None)
    if orig is not None:
        slips.append((int(pruning.dead_units(orig.detach().cpu(), n_parent).sum()), (
            f"that reads {child}.weight_orig. After apply_masks PyTorch keeps the untouched "
            f"weights in weight_orig and the 0/1 mask in weight_mask; the network uses "
            f"weight = weight_orig * weight_mask, so look at {child}.weight.")))
    hint = _first_match(value, [s for s in slips if s[0] != n_dead], atol=0, rtol=0)
    return _say(False, hint or f"you gave {value}, but {n_dead} units of {parent} are "
                               f"dead: look for columns of {child}.weight that are zero in "
                               "every row.")
