"""Notebook 07 (reproduction): the exercise's checker.

``check_block_pvalues``: block p-values against the permuted-child null (section 4e).
"""
from __future__ import annotations

from typing import Any

import torch

from .common import _say, _missing, _Unreadable, _array

__all__ = ["check_block_pvalues"]


def check_block_pvalues(D: Any, null: Any, answer: Any) -> bool:
    """Check permutation p-values of every block: ``(1 + #{null >= D}) / (1 + permutations)``
    (section 4e), as ``mi.block_pvalues``. ``null`` has shape (permutations, G_c, G_p)."""
    from .. import mi

    if _missing(answer):
        return False
    ref = mi.block_pvalues(D, null)
    try:
        value = _array(answer, f"a tensor of shape {tuple(ref.shape)}")
    except _Unreadable as err:
        return _say(False, str(err))
    if tuple(value.shape) != tuple(ref.shape):
        return _say(False, f"expected one p-value per block, shape {tuple(ref.shape)}; got "
                           f"{tuple(value.shape)}.")
    if not torch.isfinite(value).all():
        return _say(False, "some p-values are NaN or infinite; count null values, do not divide "
                           "by zero.")
    if torch.allclose(value, ref, atol=1e-9):
        small = int((ref <= 0.05).sum())
        return _say(True, f"{ref.numel()} p-values from {int(torch.as_tensor(null).shape[0])} "
                          f"permutations; {small} blocks at p <= 0.05.")
    d = torch.as_tensor(D).double()
    nul = torch.as_tensor(null).double()
    k = nul.shape[0]
    exceed = (nul >= d[None]).sum(dim=0).double()
    strict = (nul > d[None]).sum(dim=0).double()
    slips = [(exceed / k, "add one to the count and to the number of permutations: "
                          "(1 + #{null >= D}) / (1 + permutations); D itself counts as one draw "
                          "of the null, so no p-value is 0."),
             ((1 + strict) / (1 + k), "count null values *at or above* D (>=), not strictly "
                                     "above: the estimates are counts, so ties happen."),
             (1 - ref, "that is the share *below* D; the p-value is the share of the null at or "
                       "above the observed D."),
             (1 - exceed / k, "that is the share below D; count null values at or above D, "
                              "then (1 + count) / (1 + permutations).")]
    for wrong, hint in slips:
        if torch.allclose(value, wrong, atol=1e-9):
            return _say(False, hint)
    gap = int((~torch.isclose(value, ref, atol=1e-9)).sum())
    return _say(False, f"{gap} of {ref.numel()} p-values differ; for each block count the "
                       "permutations whose value is >= D, then (1 + count) / (1 + permutations).")
