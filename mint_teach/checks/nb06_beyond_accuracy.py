"""Notebook 06 (beyond accuracy): the exercise's checker.

``check_ece``: the expected calibration error over equal-width confidence bins (section 8).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .common import _say, _missing, _Unreadable, _number, _close, _first_match, _rounded

__all__ = ["check_ece"]


def check_ece(probs: Any, labels: Any, answer: Any, *, n_bins: int = 15) -> bool:
    """Check the expected calibration error over ``n_bins`` equal-width confidence bins
    (section 8): ``sum_b (n_b / N) |accuracy_b - confidence_b|``."""
    from .. import analysis

    if _missing(answer):
        return False
    probs = torch.as_tensor(np.asarray(probs) if not isinstance(probs, torch.Tensor) else probs)
    labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor)
                             else labels)
    ref = analysis.expected_calibration_error(probs, labels, n_bins)
    try:
        value = _number(answer)
    except _Unreadable as err:
        return _say(False, str(err))
    tol = {"atol": 1e-4, "rtol": 1e-3}
    if _close(value, ref, **tol):
        return _say(True, f"ECE = {ref:.4f} over {n_bins} bins.")
    bins = analysis.reliability_bins(probs, labels, n_bins)
    keep = bins["counts"] > 0
    gaps = (bins["accuracy"] - bins["confidence"]).abs()[keep]
    conf, pred = probs.double().max(dim=1)
    accuracy = float((pred == labels).double().mean())
    slips = [(100 * ref, "that looks like a percentage; give the ECE as a fraction in [0, 1]."),
             (abs(float(conf.mean()) - accuracy),
              ("that is the overall gap |mean confidence - accuracy|; split into confidence "
               "bins first and add up the bins' gaps, weighted.")),
             (float(gaps.mean()), ("weight each bin's gap by its share of the items, n_b / N, "
                                   "instead of averaging the bins equally.")),
             (float((bins["counts"][keep].double() * gaps).sum()),
              "divide each bin's count by N: the weights n_b / N add up to 1.")]
    for other in (10, 15, 20):
        if other != n_bins:
            slips.append((analysis.expected_calibration_error(probs, labels, other),
                          f"that is the ECE with {other} bins; use n_bins = {n_bins}."))
    hint = _first_match(value, [s for s in slips if not _close(s[0], ref, **tol)], **tol)
    hint = hint or _rounded(value, ref)
    return _say(False, hint or f"you gave {value:.4f}, but the ECE is {ref:.4f}. Bin by "
                               "confidence (the largest probability), then sum "
                               "(n_b / N) |accuracy_b - confidence_b|.")
